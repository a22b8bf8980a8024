//! The problem responses of the OpenAPI document, declared once: a handler lists the sets it
//! can answer with (`responses((status = 200, …), Denied, BadRequest)`), each an
//! `application/problem+json` body holding a `Problem`.
#![allow(dead_code)] // Only their derived documentation is used, never a value.

use utoipa::IntoResponses;

use crate::error::Problem;

// Plain comments, not doc comments: a doc comment would become the response's description.

// 401 (no or a bad token) and 403 (a role or tenant that may not): every authenticated route.
#[derive(IntoResponses)]
pub enum Denied {
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

// 400: a parameter or body field that is refused, named in the problem.
#[derive(IntoResponses)]
#[response(status = 400, content_type = "application/problem+json")]
pub struct BadRequest(Problem);

// 404: no such record, task or file for the caller's tenant.
#[derive(IntoResponses)]
#[response(status = 404, content_type = "application/problem+json")]
pub struct NotFound(Problem);

// 413: a body over the route's size limit.
#[derive(IntoResponses)]
#[response(status = 413, content_type = "application/problem+json")]
pub struct TooLarge(Problem);

// 415: a body of a content type the route does not take.
#[derive(IntoResponses)]
#[response(status = 415, content_type = "application/problem+json")]
pub struct UnsupportedType(Problem);

// 503: the store is busy or unreachable; try again.
#[derive(IntoResponses)]
#[response(status = 503, content_type = "application/problem+json")]
pub struct Unavailable(Problem);

// 409: the request conflicts with the item's state (e.g. a record not sealed yet).
#[derive(IntoResponses)]
#[response(status = 409, content_type = "application/problem+json")]
pub struct Conflict(Problem);
