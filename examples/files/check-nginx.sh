#!/bin/bash -e
# Validator: nginx is running in the booted image and serves the page that
# the customizers installed.
systemctl is-active nginx
exec 3<>/dev/tcp/127.0.0.1/80
printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
response=$(cat <&3)
head -n1 <<<"$response"
grep -q '^HTTP/1.[01] 200' <<<"$response"
grep -qF 'Hello from an imagesmith-built Debian 12 image' <<<"$response"
echo "served: the page in /var/www/imagesmith/index.html"
