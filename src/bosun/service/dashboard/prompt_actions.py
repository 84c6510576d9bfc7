"""The prompt console, write side: every change through `PromptRegistry` (or the gate's
`run_gate`), by a viewer holding ``prompts:edit``, audited by the registry with who made it.

```
POST /prompts/{name}/versions               edit -> a new version (the draft to gate)
POST /prompts/{name}/versions/{v}/gate      run the evaluation gate on it (in the background)
POST /prompts/{name}/labels                 promote | rollback | canary | clear_canary |
                                            shadow | clear_shadow
```

Promoting (or a canary) to ``production`` is refused, with the gate's reason, unless the
version's latest gate passed: the registry decides that, not this page.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from bosun.gateway.auth import PROMPTS_EDIT
from bosun.prompts.registry import PRODUCTION, PromptError
from bosun.service.dashboard.context import Dash, Poster, PromptPoster
from bosun.service.dashboard.forms import Form, FormRejected
from bosun.service.dashboard.prompts import PromptName, Version
from bosun.service.dashboard.render import DashboardRoute

__all__ = ["router"]

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

_MAX_TEMPLATE = 200_000


def _variables(text: str) -> dict[str, str]:
    """``name: type`` per line."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, colon, kind = line.partition(":")
        if not colon:
            raise FormRejected(
                f"variables, line {number}: write `name: type` (types: str, int, float, bool, "
                "list, dict). Nothing was changed."
            )
        found[name.strip()] = kind.strip()
    return found


@router.post("/prompts/{name}/versions")
async def create(name: PromptName, posted: PromptPoster, dash: Dash) -> Response:
    """A new version from the edit form: template, variables, changelog, owner; the model
    settings of the version it was edited from carry over."""
    viewer, form = posted
    viewer.require(PROMPTS_EDIT)
    registry = dash.registry
    base = await asyncio.to_thread(
        registry.get, name, form.required("base", max_chars=64, label="the base version")
    )
    version = form.required("version", max_chars=64, label="the version")
    template = form.required("template", max_chars=_MAX_TEMPLATE, label="the template")
    variables = _variables(form.text("variables", max_chars=4000, label="the variables"))
    changelog = form.text("changelog", max_chars=4000, label="the changelog").strip() or None
    owner = form.text("owner", max_chars=200, label="the owner").strip() or base.owner
    await asyncio.to_thread(
        lambda: registry.create(
            name,
            version,
            template.replace("\r\n", "\n"),
            variables=variables,
            model_settings=dict(base.model_settings),
            changelog=changelog,
            owner=owner,
            by=viewer.id,
        )
    )
    return RedirectResponse(f"/prompts/{name}/versions/{version}?done=created", status_code=303)


@router.post("/prompts/{name}/versions/{version}/gate")
async def gate(name: PromptName, version: Version, posted: Poster, dash: Dash) -> Response:
    """Start the evaluation gate of the version; the page follows its progress."""
    viewer, _ = posted
    viewer.require(PROMPTS_EDIT)
    await dash.gates.start(name, version, by=viewer.id)
    return RedirectResponse(f"/prompts/{name}/versions/{version}?done=gate", status_code=303)


def _percent(form: Form) -> float:
    text = form.required("percent", max_chars=20, label="the canary percentage")
    try:
        return float(text)
    except ValueError:
        raise FormRejected(f"the canary percentage must be a number, not {text!r}") from None


@router.post("/prompts/{name}/labels")
async def labels(name: PromptName, posted: Poster, dash: Dash) -> Response:
    """Move a label, or change its canary or shadow."""
    viewer, form = posted
    viewer.require(PROMPTS_EDIT)
    registry = dash.registry
    action = form.choice(
        "action",
        ("promote", "rollback", "canary", "clear_canary", "shadow", "clear_shadow"),
        label="the action",
    )
    label = form.text("label", max_chars=64, label="the label").strip() or PRODUCTION
    by = viewer.id

    def version() -> str:
        return form.required("version", max_chars=64, label="the version")

    if action == "promote":
        chosen = version()
        await asyncio.to_thread(lambda: registry.promote(name, chosen, label, by=by))
    elif action == "rollback":
        await asyncio.to_thread(lambda: registry.rollback(name, label, by=by))
    elif action == "canary":
        chosen, percent = version(), _percent(form)
        await asyncio.to_thread(lambda: registry.set_canary(name, label, chosen, percent, by=by))
    elif action == "clear_canary":
        await asyncio.to_thread(lambda: registry.clear_canary(name, label, by=by))
    elif action == "shadow":
        chosen = version()
        await asyncio.to_thread(lambda: registry.set_shadow(name, label, chosen, by=by))
    elif action == "clear_shadow":
        await asyncio.to_thread(lambda: registry.clear_shadow(name, label, by=by))
    else:  # pragma: no cover - choice() allows only the above
        raise PromptError(f"unknown action {action!r}")
    return RedirectResponse(f"/prompts/{name}?done={action}", status_code=303)
