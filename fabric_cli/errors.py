"""The one exception type users ever see: a plain sentence, never a traceback."""


class FabricError(Exception):
    """A problem the user can fix. The message is one line: what is wrong and what to do.

    exit_code 2 means bad input (a wrong argument, a broken file); 1 means the work itself
    failed (the run diverged).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
