# The demo tier on a VM (what images/demo is in a container): GET / names the tier and
# replica, then what the upstream tier answers; /healthz for the load balancer.
mkdir -p /srv/www/cgi-bin
echo ok > /srv/www/healthz
cat > /srv/www/cgi-bin/index.cgi <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "${VIRTSTACK_TIER:-demo} $(hostname)"
if [ -n "${VIRTSTACK_UPSTREAM:-}" ]; then
    timeout 5 busybox wget -q -O - "$VIRTSTACK_UPSTREAM/" || echo "upstream $VIRTSTACK_UPSTREAM failed"
fi
CGI
chmod 755 /srv/www/cgi-bin/index.cgi
# -vv: each request is logged ("<client>: url:/<path>") to the journal, as `virtstack logs` shows.
exec busybox httpd -f -vv -p 8080 -h /srv/www
