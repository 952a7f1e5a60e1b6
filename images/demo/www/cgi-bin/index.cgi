#!/bin/sh
# (`timeout` rather than wget -T: Debian's static busybox 1.35 wget crashes with -T.)
# GET /: which tier and replica answered, then what the upstream tier answers.
printf 'Content-Type: text/plain\r\n\r\n'
echo "${VIRTSTACK_TIER:-demo} $(hostname)"
if [ -n "${VIRTSTACK_UPSTREAM:-}" ]; then
    timeout 5 wget -q -O - "$VIRTSTACK_UPSTREAM/" || echo "upstream $VIRTSTACK_UPSTREAM failed"
fi
