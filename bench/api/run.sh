#!/usr/bin/env bash
# Benchmark: the REST API of `imagesmith serve` against nginx serving the same
# JSON bodies from static files, both on 127.0.0.1, driven by wrk in the same
# run. Measures GET of one gallery, LIST of the galleries in a group (one page
# of 50), and PUT of small resources (each PUT creates a new gallery; wrk Lua
# script put.lua), at 1, 16 and 100 connections. For PUT, nginx answers
# `return 200 <the gallery body>` (it cannot store anything), so that row is
# the cost of an HTTP round trip with a body, not of a write.
#
# Reports requests/s, the throughput ratio imagesmith/nginx and the p99
# latency (wrk --latency), and counts every non-2xx answer (a benchmark of
# error pages would be meaningless: any non-2xx from imagesmith fails the run).
# Writes the table to bench/api/results.md.
#
# Usage: bench/api/run.sh
# Environment: BUILD (build dir, default build/), DURATION (seconds per
#              measurement, default 10), THREADS (imagesmith serve --threads,
#              default 4), RESULTS (default bench/api/results.md),
#              BENCH_QUICK=1 (1 s per measurement, results to a temp file unless
#              RESULTS is set; the ctest bench.api.quick).
# Needs wrk, nginx, curl, jq.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BUILD:-$repo/build}
bin=$build/imagesmith
duration=${DURATION:-10}
threads=${THREADS:-4}
results=${RESULTS:-$here/results.md}
quick=${BENCH_QUICK:-0}
conns_list=(1 16 100)
work=$(mktemp -d /var/tmp/imagesmith-api-bench.XXXXXX)
if [[ $quick == 1 ]]; then
  duration=1
  results=${RESULTS:-$work/results.md}
fi
for tool in wrk nginx curl jq; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "imagesmith binary not found: $bin" >&2; exit 1; }

serve_pid= nginx_pid=
cleanup() {
  [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  [[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# 1. imagesmith serve on a fresh data directory.
export IMAGESMITH_HOME=$work/home
mkdir -p "$IMAGESMITH_HOME"
token=$("$bin" account get-access-token | jq -r .accessToken)
"$bin" serve --listen 127.0.0.1:0 --threads "$threads" --access-log off > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
for _ in $(seq 100); do [[ -s $work/serve.out ]] && break; sleep 0.1; done
api=http://$(jq -r .listen "$work/serve.out")
sub=$("$bin" account show | jq -r .id)
auth="Authorization: Bearer $token"
rg=/subscriptions/$sub/resourceGroups/bench
gal=$rg/providers/Microsoft.Compute/galleries
v=api-version=2024-03-03
put() {  # PATH BODY
  local code
  code=$(curl -sS -o "$work/last.json" -w '%{http_code}' -X PUT -H "$auth" \
    -H 'Content-Type: application/json' --data "$2" "$api$1")
  [[ $code == 200 || $code == 201 ]] || { echo "PUT $1: $code $(cat "$work/last.json")" >&2; exit 1; }
}
put "$rg?api-version=2021-04-01" '{"location": "eastus"}'
for i in $(seq -w 1 50); do
  put "$gal/gal$i?$v" '{"location": "eastus", "tags": {"team": "images"}, "properties": {"description": "benchmark gallery"}}'
done

# 2. nginx serving the very bodies imagesmith returns, from files.
root=$work/www
mkdir -p "$root" "$work/nginx/logs"
# nginx started as root serves with an unprivileged worker user: let it
# through to the files (and nothing else of the work directory).
chmod 0711 "$work"
chmod 0755 "$root"
curl -sS -f -H "$auth" "$api$gal/gal01?$v" > "$root/gallery.json"
curl -sS -f -H "$auth" "$api$gal?$v" > "$root/list.json"
chmod 0644 "$root"/*.json
[[ $(jq '.value | length' "$root/list.json") == 50 ]] || { echo "the list is not 50 galleries" >&2; exit 1; }
if grep -q "[\$']" "$root/gallery.json"; then echo "gallery body has \$ or ': cannot inline it" >&2; exit 1; fi
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $root;
    location = /get { try_files /gallery.json =404; }
    location = /list { try_files /list.json =404; }
    location /put/ { return 200 '$(cat "$root/gallery.json")'; }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$nginx_port/get" >/dev/null && break; sleep 0.1; done
cmp <(curl -sS -H "$auth" "http://127.0.0.1:$nginx_port/get") "$root/gallery.json" || { cat "$work/nginx/logs/error.log" >&2; curl -si "http://127.0.0.1:$nginx_port/get" >&2; exit 1; }

# 3. wrk. PUT goes through put.lua: a new gallery name per request.
run_wrk() {  # URL CONNS [LUA]
  local url=$1 c=$2 lua=${3:-} t=$(( $2 < 2 ? 1 : 2 ))
  local args=(-t"$t" -c"$c" -d"${duration}s" --latency -H "$auth" -H 'Content-Type: application/json')
  [[ -n $lua ]] && args+=(-s "$lua")
  wrk "${args[@]}" "$url"
}
# "RPS P99_MS NON2XX" from wrk's output.
parse() {
  awk '/^Requests\/sec:/ {rps=$2}
       /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
       /Non-2xx or 3xx responses:/ {bad=$5}
       /Socket errors:/ {bad+=0}
       END {printf "%s %s %d\n", rps, p99, bad}'
}
echo "# put.lua" > /dev/null
sed "s#@PREFIX@#$gal/wrk#; s#@QUERY@#$v#" "$here/put.lua" > "$work/put.lua"

rows=()
failed=0
load=$(cut -d' ' -f1-3 /proc/loadavg)
for op in GET LIST PUT; do
  for c in "${conns_list[@]}"; do
    case $op in
      GET) is_url="$api$gal/gal01?$v"; ng_url="http://127.0.0.1:$nginx_port/get"; lua= ;;
      LIST) is_url="$api$gal?$v"; ng_url="http://127.0.0.1:$nginx_port/list"; lua= ;;
      PUT) is_url="$api/"; ng_url="http://127.0.0.1:$nginx_port/put/"; lua=$work/put.lua ;;
    esac
    read -r is_rps is_p99 is_bad < <(run_wrk "$is_url" "$c" "$lua" | tee "$work/wrk-$op-$c-is.txt" | parse)
    read -r ng_rps ng_p99 ng_bad < <(run_wrk "$ng_url" "$c" "$lua" | tee "$work/wrk-$op-$c-ng.txt" | parse)
    ratio=$(awk -v a="$is_rps" -v b="$ng_rps" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    rows+=("| $op | $c | $is_rps | $ng_rps | $ratio | $is_p99 | $ng_p99 | $is_bad / $ng_bad |")
    echo "$op c=$c: imagesmith $is_rps req/s p99 ${is_p99} ms; nginx $ng_rps req/s p99 ${ng_p99} ms; ratio $ratio; non-2xx $is_bad/$ng_bad" >&2
    if [[ $is_bad != 0 ]]; then
      echo "imagesmith answered $is_bad non-2xx responses in $op c=$c:" >&2
      cat "$work/wrk-$op-$c-is.txt" >&2
      failed=1
    fi
  done
done

{
  echo "# bench/api: imagesmith serve vs nginx (static files)"
  echo
  echo "wrk ${duration} s per cell, threads min(2, connections); imagesmith serve --threads $threads,"
  echo "nginx worker_processes auto; both on 127.0.0.1 on this $(nproc)-core machine, load average"
  echo "before the run: $load. Same JSON bodies (nginx serves the files imagesmith returned)."
  echo "GET: one gallery. LIST: 50 galleries in one page. PUT: a new gallery per request (nginx:"
  echo "\`return 200\` of the same body, no write). p99 in ms. Run $(date -u +%Y-%m-%dT%H:%MZ)."
  echo
  echo "| op | connections | imagesmith req/s | nginx req/s | ratio | imagesmith p99 ms | nginx p99 ms | non-2xx (imagesmith / nginx) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  printf '%s\n' "${rows[@]}"
} > "$results"
cat "$results"
exit $failed
