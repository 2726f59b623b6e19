"""The ``users`` function: register, read, change and delete the caller's own account."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import Api, Reply, RequestContext
from shared.users import accounts as service
from shared.users.model import UserCreate, UserPublic, UserUpdate

api = Api("users")


@api.route(
    "/users",
    methods=["POST"],
    body=UserCreate,
    response=UserPublic,
    status=201,
    responses={409: "Already registered, or the email is taken"},
)
def register_user(ctx: RequestContext) -> Reply:
    """Register the profile of the token's user."""
    # Registration alone reads the files and samples a token stored before it: off the
    # cold start.
    from shared.files.repository import bytes_held_in as files_held  # noqa: PLC0415
    from shared.samples.repository import bytes_held_in as samples_held  # noqa: PLC0415

    user = service.register_user(
        store=ctx.container.store,
        user_id=ctx.user_id,
        request=ctx.body(UserCreate),
        held=(files_held, samples_held),
    )
    return Reply(UserPublic.from_entity(user), status=201)


@api.route("/users/me", methods=["GET"], response=UserPublic)
def get_me(ctx: RequestContext) -> UserPublic:
    """Return the caller's profile, with storage used."""
    return UserPublic.from_entity(service.get_user(store=ctx.container.store, user_id=ctx.user_id))


@api.route(
    "/users/me",
    methods=["PATCH"],
    body=UserUpdate,
    response=UserPublic,
    responses={409: "The email is taken"},
)
def update_me(ctx: RequestContext) -> UserPublic:
    """Change the caller's names."""
    user = service.update_user(
        store=ctx.container.store, user_id=ctx.user_id, request=ctx.body(UserUpdate)
    )
    return UserPublic.from_entity(user)


@api.route("/users/me", methods=["DELETE"], status=204)
def delete_me(ctx: RequestContext) -> Reply:
    """Delete the caller's account and everything they own."""
    service.delete_account(
        store=ctx.container.store, user_id=ctx.user_id, purges=ctx.container.account_purges()
    )
    return Reply(status=204)


@functions_framework.http
def users(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
