#!/bin/bash -e
# Configures nginx to serve the page that the File customizer dropped in /tmp.
echo "imagesmith example: configuring nginx"
sudo mkdir -p /var/www/imagesmith
# install, not cp: the File customizer leaves /tmp/index.html readable by root only,
# and nginx (www-data) must read the page (the nginxAnswersOverHttp validator
# caught the 403).
sudo install -m 0644 /tmp/index.html /var/www/imagesmith/index.html
sudo tee /etc/nginx/sites-available/imagesmith >/dev/null <<'CONF'
server {
    listen 80 default_server;
    root /var/www/imagesmith;
    index index.html;
}
CONF
sudo ln -sf /etc/nginx/sites-available/imagesmith /etc/nginx/sites-enabled/default
sudo systemctl enable nginx
