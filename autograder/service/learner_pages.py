"""The learner's pages: sign in (invitation link or token), their assignments and deadlines, upload,
their feedback (when the assignment's mode shows it) and their own history. A learner reaches only
their own submissions; every form carries the session's CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from markupsafe import Markup

from autograder.grading.reports import feedback_body
from autograder.service import uploads, views
from autograder.service.web import redirect, render

router = APIRouter()


def _sign_in_learner(request: Request, token: str) -> bool:
    row = request.app.state.store.learner_by_token((token or "").strip())
    if row is None:
        return False
    request.session.clear()
    request.session["who"] = f"learner:{row.learner}"
    return True


@router.get("/join/{token}")
def join(request: Request, token: str):
    """The invitation link staff hand out: signs the learner in (and shows their token once more)."""
    if not _sign_in_learner(request, token):
        return render(
            request, "signin.html", {"error": "this invitation link is not valid (ask staff for a new one)"}, 403
        )
    # The token is in the link the learner opened: show it with the server, for submit() and the terminal.
    response = render(request, "welcome.html", {"token": token.strip(), "server": str(request.base_url).rstrip("/")})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/signin")
def signin_page(request: Request):
    return render(request, "signin.html")


@router.post("/signin")
async def signin(request: Request):
    form = await views.checked_form(request, max_files=0, max_fields=4)
    if not _sign_in_learner(request, str(form.get("token") or "")[:256]):
        return render(request, "signin.html", {"error": "unknown token"}, 403)
    return redirect("/")


@router.post("/signout")
async def signout(request: Request):
    await views.checked_form(request, max_files=0, max_fields=4)
    request.session.clear()
    return redirect("/signin")


@router.get("/")
def home(request: Request):
    if views.signed_in_staff(request):
        return redirect("/staff")
    learner = views.signed_in_learner(request)
    if learner is None:
        return redirect("/signin")
    store = request.app.state.store
    person = store.learner(learner)
    policy = store.course_policy()
    latest = {row.assignment: row for row in store.latest(learner=learner)}
    rows = []
    for a in store.assignments():
        if not a.is_open and a.name not in latest:
            continue
        mine = policy.for_assignment(a.name, learner)
        sub = latest.get(a.name)
        visible = sub is not None and views.feedback_visible(sub, a)
        judged = store.judged(sub) if visible else None
        rows.append({"a": a, "policy": mine, "sub": sub, "judged": judged})
    return render(
        request,
        "learner_home.html",
        {
            "person": person,
            "rows": rows,
            "history": store.submissions(learner=learner),
            "refused": store.refusals(learner=learner, limit=50),
        },
    )


@router.post("/submit")
async def submit(request: Request):
    learner = views.signed_in_learner(request)
    if learner is None:
        return redirect("/signin")
    form = await views.checked_form(request, max_files=1, max_fields=4)
    upload = form.get("notebook")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return render(request, "message.html", {"title": "No file", "text": "choose a notebook file to upload"}, 422)
    try:
        accepted = await uploads.accept_from(
            request, learner=learner, upload=upload, assignment=form.get("assignment"), via="browser"
        )
    except uploads.Refused as refused:
        response = render(
            request,
            "message.html",
            {"title": "Not accepted", "text": refused.message},
            refused.status,
        )
        response.headers.update(uploads.retry_after_header(refused))
        return response
    return redirect(f"/submissions/{accepted.submission.id}")


@router.get("/submissions/{id}")
def submission(request: Request, id: int):
    learner = views.signed_in_learner(request)
    staff = views.signed_in_staff(request)
    if learner is None and not staff:
        return redirect("/signin")
    row = views.own_submission(request, id, learner)
    store = request.app.state.store
    assignment = store.assignment(row.assignment)
    visible = staff or views.feedback_visible(row, assignment)
    judged = store.judged(row) if row.result is not None else None
    body = Markup("\n".join(feedback_body(judged))) if visible and judged is not None else None
    return render(
        request,
        "submission.html",
        {
            "sub": row,
            "assignment": assignment,
            "visible": visible,
            "judged": judged,
            "feedback": body,
            "staff": staff,
            "refresh": row.status != "graded",
        },
    )


@router.get("/token")
def my_token(request: Request):
    """A new token for the notebook and the terminal (the old link stops working: it is shown once)."""
    learner = views.signed_in_learner(request)
    if learner is None:
        return redirect("/signin")
    return render(request, "token.html", {"token": None})


@router.post("/token")
async def new_token(request: Request):
    learner = views.signed_in_learner(request)
    if learner is None:
        return redirect("/signin")
    await views.checked_form(request, max_files=0, max_fields=4)
    token = request.app.state.store.reissue_token(learner)
    return render(request, "token.html", {"token": token, "server": str(request.base_url).rstrip("/")})
