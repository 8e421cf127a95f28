import os
import shutil
import subprocess

import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, "android_demo", "run_jvm_tests.sh")


@pytest.mark.skipif(not shutil.which("javac") or not os.path.exists("/usr/share/java/junit4.jar"),
                    reason="needs a JDK and JUnit 4 (apt-get install default-jdk-headless junit4)")
def test_android_sampler_core_junit_suite():
    """The Android demo's plain-Java core: its JUnit 4 tests, run with javac (no Android SDK here)."""
    result = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, timeout=600)
    print(result.stdout[-2000:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "OK (" in result.stdout
