"""The error tree of deployer, and the exit code each error carries.

Everything that can go wrong and reach a user is one of these classes. Vendor
exceptions (google.api_core, requests, OSError from transports) never cross
`deployer.providers`: they are mapped there to this tree and chained with
`raise ... from exc`. Retry behaviour is carried by the type: only
`TransientError` (and its subclasses) is ever retried.

    DeployerError                      exit 1   anything we raise on purpose
    ├── SpecError                      exit 3   the YAML spec is invalid (file:line, field, fix)
    ├── ConfigError                    exit 3   bad CLI input or environment (unset variable,
    │                                           no emulator)
    ├── ApiError                       exit 4   an API call failed (provider-mapped)
    │   ├── TransientError             exit 4   429 / 5xx / connection reset: retried with backoff
    │   │   └── ResponseLost                    the call may have taken effect: adopt, never
    │   │                                       duplicate
    │   └── PermanentError             exit 4   never retried
    │       ├── NotFound                        404 / NOT_FOUND
    │       ├── AlreadyExists                   409 / ALREADY_EXISTS
    │       ├── InvalidArgument                 400 / INVALID_ARGUMENT
    │       ├── FailedPrecondition              400 / FAILED_PRECONDITION
    │       └── PermissionDenied                401, 403 / UNAUTHENTICATED, PERMISSION_DENIED
    ├── OperationTimeout               exit 5   a long-running operation did not finish in time
    ├── OperationFailed                exit 5   a long-running operation finished with an error
    ├── LockHeld                       exit 6   another apply holds the stack lock
    ├── BudgetExceeded                 exit 7   the plan's steady-state cost exceeds the guard
    ├── BatchJobFailed                 exit 8   a batch prediction job ended FAILED or CANCELLED
    ├── StalePlan                      exit 9   a saved or confirmed plan no longer matches the
    │                                           stack, the spec or an artifact: plan again
    ├── RolloutFailed                  exit 10  a new version failed a rollout step's checks: the
    │                                           previous split was restored (or held)
    └── Aborted                        exit 130 the user declined or interrupted

`plan --detailed-exitcode` maps every error to 1, as terraform does.
"""

from __future__ import annotations


class DeployerError(Exception):
    """Base of every error deployer raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # A sentence telling the user how to fix it, shown under the message.
        self.hint = hint

    def render(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


class SpecError(DeployerError):
    """One or more problems in a spec file, each located by file, line and field path."""

    exit_code = 3

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(p.render() for p in self.problems))

    def render(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the spec; nothing was changed:"
        return "\n".join([head, *(p.render() for p in self.problems)])


class SpecProblem:
    """One validation problem: where it is, what is wrong, how to fix it."""

    __slots__ = ("field", "file", "fix", "line", "message")

    def __init__(self, *, file: str, line: int | None, field: str, message: str, fix: str) -> None:
        self.file = file  # path of the spec file as the user gave it
        self.line = line  # 1-based line of the offending node, None if unknown
        self.field = field  # dotted path, e.g. "endpoints[0].deployments[1].traffic"
        self.message = message  # what is wrong, in one sentence
        self.fix = fix  # how to fix it, in one sentence

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}\n  fix: {self.fix}"

    def __repr__(self) -> str:
        return f"SpecProblem({self.render()!r})"


class ConfigError(DeployerError):
    """Bad command-line input or environment, found before any API call."""

    exit_code = 3


class ApiError(DeployerError):
    """An API call failed. `status` is the canonical code name, e.g. "NOT_FOUND"."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        *,
        status: str = "UNKNOWN",
        http_status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.http_status = http_status


class TransientError(ApiError):
    """Worth retrying: throttling, server errors, dropped connections."""


class ResponseLost(TransientError):
    """The connection broke after the request was sent: the call may have taken effect."""


class PermanentError(ApiError):
    """Retrying cannot help."""


class NotFound(PermanentError):
    pass


class AlreadyExists(PermanentError):
    pass


class InvalidArgument(PermanentError):
    pass


class FailedPrecondition(PermanentError):
    pass


class PermissionDenied(PermanentError):
    pass


class OperationTimeout(DeployerError):
    exit_code = 5


class OperationFailed(DeployerError):
    exit_code = 5


class LockHeld(DeployerError):
    exit_code = 6


class BudgetExceeded(DeployerError):
    exit_code = 7


class BatchJobFailed(DeployerError):
    exit_code = 8


class StalePlan(DeployerError):
    """The plan to execute was made against a stack, spec or artifact that has changed since.

    Raised before any mutating call of the plan (a saved plan is checked before the lock is
    taken, and again under it), naming what changed."""

    exit_code = 9


class RolloutFailed(DeployerError):
    """A rollout step failed its checks; the report per version is in the message."""

    exit_code = 10


class Aborted(DeployerError):
    exit_code = 130
