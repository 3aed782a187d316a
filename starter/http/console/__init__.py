"""The agents' web console under /console: server-rendered pages (Jinja2, autoescaped) over the same client calls the
API's routes make, with the signed-in token's principal, so every rule (roles, tiers and departments, the executive
tier) is the client's, checked once.

No CDN and no inline script: a vendored stylesheet and one small script (the countdowns) from /console/static, under
a Content-Security-Policy with `script-src 'self'`. Every page is correct without the script. Forms post, then
redirect to a page (POST-redirect-GET); an action's outcome is kept in the session, never in a URL."""

from starter.http.console.pages import mount

__all__ = ["mount"]
