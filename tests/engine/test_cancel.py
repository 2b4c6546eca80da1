"""The cancel token works across threads and raises Cancelled where asked."""

from __future__ import annotations

import threading

import pytest

from cnn_studio.core.cancel import Cancelled, CancelToken, raise_if_cancelled


def test_cancel_token_across_threads():
    token = CancelToken()
    raise_if_cancelled(token)
    raise_if_cancelled(None)
    t = threading.Thread(target=token.cancel)
    t.start()
    t.join()
    assert token.cancelled
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()
