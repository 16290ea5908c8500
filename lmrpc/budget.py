"""The response budget (API.md §1) as plain accounting: which answers fit one response.

A response is at most ``limit`` bytes. Every call that will be answered has its ``-32012``
answer (its fallback) set aside from the start, together with the batch's brackets and
commas, so the whole response stays within the limit whatever the calls return. A call's
own answer then takes its fallback's place when the difference fits in what is left;
otherwise the call is answered with its fallback. Answers are fitted as the calls finish.
"""


class ResponseBudget:
    """The bytes one request's response may still take, shared by its calls."""

    def __init__(self, limit: int, set_aside: int) -> None:
        """``set_aside``: the fallbacks of all answered calls and the batch's framing."""
        self._free = limit - set_aside
        self.spent = False  # some answer did not fit: the response is as full as it gets

    @property
    def possible(self) -> bool:
        """Whether even the fallbacks fit: else the request cannot be answered within it."""
        return self._free >= 0

    def fit(self, answer: bytes, fallback: bytes) -> bytes:
        """``answer`` when it fits in what is left, else ``fallback`` (already set aside)."""
        extra = len(answer) - len(fallback)
        if extra <= self._free:
            self._free -= extra
            return answer
        self.spent = True
        return fallback


def framing(answers: int, is_batch: bool) -> int:
    """Bytes around the answers: a batch's ``[``, ``]`` and the commas between them."""
    return answers + 1 if is_batch else 0
