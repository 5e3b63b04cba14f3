"""Hides TensorFlow's native start-up notices on stderr, and nothing else.

TensorFlow's C++ code writes notices to file descriptor 2 before its
logging is set up, so `TF_CPP_MIN_LOG_LEVEL` does not hide them: the CUDA
probe ("Could not find cuda drivers", "failed call to cuInit"), oneDNN and
CPU-instruction notices, and absl's "All log messages before
absl::InitializeLog()". `native_start_up_notices_hidden()` sends
descriptor 2 through a pipe while it is active and passes on every line
but those.

Example:
```python
with native_start_up_notices_hidden():
    import tensorflow
```
"""

import contextlib
import os
import re
import sys
import threading

_NOTICE = re.compile(
    r"(All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|^[IWE]\d{4} [\d:.]+\s+\d+ (port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_fft|"
    r"cuda_dnn|cuda_blas|cuda_executor|gpu_device)\.cc:\d+\]"
    r"|^[IWE]\d{4} [\d:.]+\s+\d+ util\.cc:\d+\] oneDNN"
    r"|^To enable the following instructions: .* rebuild TensorFlow)"
)


def is_notice(line):
    """Whether a stderr line is one of TensorFlow's native start-up notices."""
    return bool(_NOTICE.search(line))


@contextlib.contextmanager
def native_start_up_notices_hidden():
    """While active, lines written to file descriptor 2 reach it unless they are notices."""
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError, AttributeError):  # No real stderr (some embedded uses).
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not is_notice(line.decode("utf-8", "replace")):
                    os.write(original, line)

    thread = threading.Thread(target=forward, daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()
        os.dup2(original, 2)  # Closes the pipe's last write end: the thread ends.
        thread.join(timeout=5)
        os.close(original)
