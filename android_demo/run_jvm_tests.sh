#!/usr/bin/env bash
# Compiles the sampler core and its JUnit 4 tests with plain javac and runs them: no Gradle, no
# Android SDK. Needs a JDK and Debian's junit4 package (apt-get install default-jdk-headless junit4).
# Works from any directory; exits non-zero if compilation or any test fails.
set -euo pipefail

DEMO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JUNIT_CP="${JUNIT_CP:-/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar}"
for jar in ${JUNIT_CP//:/ }; do
    if [[ ! -f "$jar" ]]; then
        echo "missing $jar: install JUnit 4 (Debian: apt-get install junit4) or set JUNIT_CP" >&2
        exit 2
    fi
done

BUILD="$(mktemp -d)"
trap 'rm -rf "$BUILD"' EXIT

# --release 8 keeps the core to the Java 8 API, which Android (minSdk 24) provides.
javac --release 8 -encoding UTF-8 -Xlint:all,-options -d "$BUILD/main" \
    $(find "$DEMO/core/src/main/java" -name '*.java')
javac --release 8 -encoding UTF-8 -Xlint:all,-options -cp "$BUILD/main:$JUNIT_CP" -d "$BUILD/test" \
    $(find "$DEMO/core/src/test/java" -name '*.java')

TESTS=$(cd "$BUILD/test" && find . -name '*Test.class' ! -name '*$*' | sed 's|^\./||; s|\.class$||; s|/|.|g' | sort)
java -Dkerasrnn.vectors="$DEMO/../export/sampling_vectors.json" \
    -cp "$BUILD/main:$BUILD/test:$JUNIT_CP" org.junit.runner.JUnitCore $TESTS
