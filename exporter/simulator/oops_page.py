"""WHMCS 7.3+'s generic error page, as it answers when something printed output before its response.

A hook, an add-on, a byte-order mark or a PHP notice shown with display_errors on writes output first;
WHMCS's response emitter then refuses to send its answer and the request ends in HTTP 500 with the
"Oops! Something went wrong" page. The page opens with its styling and generic advice; the cause
(`EmitterException: Output has been emitted previously ...`) stands further down, in the debug block.
"""

from __future__ import annotations

_STYLE = "\n".join(f"        .oops-{i} {{ margin: {i}px auto; padding: 0 {i}px; color: #{i:03d}; }}" for i in range(40))

NOTICE = ("<br />\n<b>Warning</b>:  Undefined variable $ticket in "
          "<b>/home/whmcs/public_html/includes/hooks/ticket_sync.php</b> on line <b>12</b><br />\n")
CAUSE = ("Laminas\\HttpHandlerRunner\\Exception\\EmitterException: Output has been emitted previously; "
         "cannot emit response")


def oops_page(prefix: str = NOTICE, extra: str = "") -> str:
    """The page's body. `prefix` is the stray output before it; `extra` is text echoed into the debug block."""
    return f"""{prefix}<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Oops! Something went wrong.</title>
    <style>
{_STYLE}
    </style>
</head>
<body>
<div class="container">
    <h1>Oops!</h1>
    <h2>Something went wrong and we couldn't process your request.</h2>
    <p>Please go back to the previous page and try again.</p>
    <p>If the problem persists, please contact support and quote the time at which it happened, so that
       the administrators can find the request in the logs of the web server and of the application.</p>
    <p class="debug">For additional assistance, please reference the
       <a href="https://docs.whmcs.com/Troubleshooting_Guide" target="_blank">WHMCS TroubleShooting Guide
       &raquo;</a></p>
    <p class="debug">{extra}</p>
    <p class="debug"><strong>Error:</strong> {CAUSE} in
       /home/whmcs/public_html/vendor/laminas/laminas-httphandlerrunner/src/Exception/EmitterException.php:19<br>
Stack trace:<br>
#0 /home/whmcs/public_html/vendor/laminas/laminas-httphandlerrunner/src/Emitter/SapiEmitterTrait.php(37):
Laminas\\HttpHandlerRunner\\Exception\\EmitterException::forOutputSent()<br>
#1 /home/whmcs/public_html/vendor/whmcs/whmcs-foundation/lib/Http/Message/ResponseFactory.php(52):
Laminas\\HttpHandlerRunner\\Emitter\\SapiEmitter-&gt;assertNoPreviousOutput()<br>
#2 {{main}}</p>
</div>
</body>
</html>
"""
