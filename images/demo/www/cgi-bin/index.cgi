#!/bin/sh
# GET /: which tier and replica answered, then what the upstream tier answers.
printf 'Content-Type: text/plain\r\n\r\n'
echo "${VIRTSTACK_TIER:-demo} $(hostname)"
if [ -n "${VIRTSTACK_UPSTREAM:-}" ]; then
    wget -q -T 5 -O - "$VIRTSTACK_UPSTREAM/" || echo "upstream $VIRTSTACK_UPSTREAM failed"
fi
