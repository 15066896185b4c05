"""Signing in (the service-role key exchanged for a session cookie) and signing out."""

from __future__ import annotations

import falcon

from tribe_api.auth import InvalidToken
from tribe_api.console.common import NOTICES, Page, log, read_form
from tribe_api.console.session import COOKIE, COOKIE_PATH, key_fingerprint
from tribe_api.pages import render_page


class SignInPage(Page):
    def on_get(self, req, resp):
        render_page(
            resp,
            "console/sign_in.html",
            session=None,
            next=_safe_next(req.get_param("next")),
            error=None,
            notice=NOTICES.get(req.get_param("notice") or ""),
        )

    def on_post(self, req, resp):
        form = read_form(req)
        token = (form.get("token") or "").strip()
        name = (form.get("name") or "").strip()[:80]
        target = _safe_next(form.get("next"))
        if not name or not token:
            return self._again(resp, falcon.HTTP_400, "Give your name and the service-role key.")
        try:
            principal = self.console.verifier.verify(token)
        except InvalidToken as exc:
            log.warning("console: sign-in refused for %r: %s", name, exc)
            return self._again(resp, falcon.HTTP_401, f"This key was not accepted: {exc}")
        if not principal.is_service:
            log.warning("console: sign-in refused for %r: a user's token", name)
            return self._again(
                resp,
                falcon.HTTP_403,
                "This is a user's token, not an operator's: the console takes the project's "
                "service-role key.",
            )
        operator = f"{name} (key {key_fingerprint(token)})"
        now = self.console.clock()
        cookie = self.console.sessions.sign(operator, now)
        resp.set_cookie(
            COOKIE,
            cookie,
            max_age=int(self.console.sessions.lifetime.total_seconds()),
            path=COOKIE_PATH,
            secure=True,
            http_only=True,
            same_site="Strict",
        )
        log.info("console: %s signed in", operator, extra={"operator": operator})
        raise falcon.HTTPSeeOther(target)

    def _again(self, resp, status, error: str) -> None:
        render_page(
            resp, "console/sign_in.html", status, session=None, next="/admin", error=error,
            notice=None,
        )  # fmt: skip


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page only (never another site)."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin"


class SignOutForm(Page):
    def on_post(self, req, resp):
        posted = self.form(req, resp)
        if posted is None:
            return
        session, _ = posted
        resp.unset_cookie(COOKIE, path=COOKIE_PATH)
        log.info("console: %s signed out", session.operator, extra={"operator": session.operator})
        raise falcon.HTTPSeeOther("/admin/sign-in?notice=signed-out")
