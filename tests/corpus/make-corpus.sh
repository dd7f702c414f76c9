#!/bin/bash
# Regenerates the false-positive corpus (README.md says what each file is) by running real
# tools on this machine: nothing here reaches the network beyond 127.0.0.1, and nothing in
# the inputs is secret. Output differs from run to run (timestamps, temp paths, versions),
# which is fine: the corpus only has to be ordinary output, not reproducible output.
#
#   bash tests/corpus/make-corpus.sh            # writes into tests/corpus/
#
# Needs gcc, g++, make, ninja, meson, /usr/bin/python3 with pytest, npm, openssl, xxd,
# script (util-linux), dpkg-scanpackages (dpkg-dev) and the .debs in /var/cache/apt/archives.
set -u
OUT=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$OUT/../.." && pwd)
W=$(mktemp -d /tmp/sr-corpus.XXXXXX)
trap 'kill "${HTTP_PID:-}" 2>/dev/null; rm -rf "$W"' EXIT
export LC_ALL=C.UTF-8 TERM=xterm-256color
cd "$W" || exit 1

# ---------------------------------------------------------------- gcc / g++
mkdir cc && cd cc || exit 1
cat > warn.c <<'EOF'
#include <stdio.h>
#include <string.h>

struct config { const char *name; int retries; unsigned timeout_ms; };

static int parse_port(const char *s)
{
    int port;
    if (strlen(s) > 5)
        return -1;
    sscanf(s, "%d", &port);
    return port;
}

int main(int argc, char **argv)
{
    struct config cfg = { "ci-runner", 3 };
    int unused_counter;
    unsigned n = 4;
    if (argc < n)
        printf("usage: %s PORT\n", argv[0]);
    printf("name=%d retries=%s\n", cfg.name, cfg.retries);
    int port = parse_port(argv[1]);
    if (port = 0)
        puts("port zero");
    char buf[8];
    sprintf(buf, "%s-%d", cfg.name, port);
    return undeclared_helper(buf);
}
EOF
cat > err.c <<'EOF'
#include <stdlib.h>

typedef struct node { int value; struct node *next; } node_t;

int sum(node_t *head)
{
    int total = 0
    for (node_t *n = head; n; n = n->next)
        total += n->valeu;
    return totl;
}

void free_list(node_t *head) {
    while (head) {
        node_t *next = head->next;
        free(head);
        head = next;
    }
EOF
cat > tmpl.cpp <<'EOF'
#include <map>
#include <string>
#include <vector>
#include <algorithm>
#include <memory>

struct Job { std::string name; int priority; };

int main()
{
    std::vector<Job> jobs{{"build", 2}, {"test", 1}, {"deploy", 3}};
    std::sort(jobs.begin(), jobs.end());
    std::map<std::string, std::unique_ptr<Job>> by_name;
    auto p = std::make_unique<Job>(Job{"lint", 0});
    by_name["lint"] = p;
    std::vector<int> v = {1, 2, 3};
    std::string s = v;
    return jobs.size() > 1u ? 0 : "one";
}
EOF
{
    for f in warn.c err.c; do
        echo "\$ gcc -std=c11 -Wall -Wextra -O2 -c $f"
        gcc -std=c11 -Wall -Wextra -O2 -fdiagnostics-color=never -c "$f" 2>&1
        echo "[exit $?]"
    done
} > "$OUT/gcc-plain.log"
{
    for f in warn.c err.c; do
        echo "\$ gcc -std=c11 -Wall -Wextra -O2 -fdiagnostics-color=always -c $f"
        gcc -std=c11 -Wall -Wextra -O2 -fdiagnostics-color=always -c "$f" 2>&1
        echo "[exit $?]"
    done
} > "$OUT/gcc-color.log"
echo "\$ g++ -std=c++17 -Wall -c tmpl.cpp" > "$OUT/gxx-plain.log"
g++ -std=c++17 -Wall -fdiagnostics-color=never -c tmpl.cpp >> "$OUT/gxx-plain.log" 2>&1
echo "\$ g++ -std=c++17 -Wall -fdiagnostics-color=always -c tmpl.cpp" > "$OUT/gxx-color.log"
g++ -std=c++17 -Wall -fdiagnostics-color=always -c tmpl.cpp >> "$OUT/gxx-color.log" 2>&1
cd "$W" || exit 1

# ---------------------------------------------------------------- pytest
mkdir py && cd py || exit 1
cat > test_sample.py <<'EOF'
import json
import pytest


def render(user, items):
    return "Hello, %s! You have %d items: %s" % (user, len(items), ", ".join(items))


def test_greeting_passes():
    assert render("ci", ["a"]) == "Hello, ci! You have 1 items: a"


def test_greeting_string_diff():
    got = render("builder", ["artifact.tar.gz", "report.xml", "coverage.json"])
    assert got == "Hello, builder! You have 3 items: artifact.tar.gz, report.html, coverage.json"


def test_multiline_string_diff():
    got = "\n".join(f"line {i}: status={'ok' if i % 7 else 'FAIL'}" for i in range(20))
    want = "\n".join(f"line {i}: status=ok" for i in range(20))
    assert got == want


def test_bytes_diff():
    got = b"\x7fELF\x02\x01\x01\x00" + bytes(range(8)) + b"payload\r\n\tend\\"
    assert got == b"\x7fELF\x02\x01\x01\x00" + bytes(range(1, 9)) + b"payload\n\tend\\"


def test_quotes_and_escapes():
    got = 'say "hi" it\'s a \\path\\to\\file\t(tab)'
    assert got == "say 'hi' it's a \\path\\to\\file (tab)"


def test_dict_diff():
    got = json.loads('{"name": "pkg", "version": "1.2.3", "deps": ["a", "b"], "private": true}')
    assert got == {"name": "pkg", "version": "1.2.4", "deps": ["a", "c"], "private": False}


@pytest.mark.parametrize("word", ["alpha", "beta", "gamma-ray"])
def test_param(word):
    assert word.isalpha(), f"not alphabetic: {word!r}"


def test_raises_wrong_message():
    with pytest.raises(ValueError, match=r"invalid literal .* base 16"):
        int("zz")


def test_list_of_bytes():
    assert [b"abc", b"d\x00e", "unicode \u00e9"] == [b"abc", b"d\x00f", "unicode e"]


@pytest.mark.skip(reason="needs a database")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known bug #42")
def test_xfailed():
    assert 1 + 1 == 3
EOF
echo "\$ python3 -m pytest -vv -p no:cacheprovider test_sample.py" > "$OUT/pytest-plain.log"
/usr/bin/python3 -m pytest -vv -p no:cacheprovider --color=no test_sample.py >> "$OUT/pytest-plain.log" 2>&1
echo "\$ python3 -m pytest -vv -p no:cacheprovider --color=yes test_sample.py" > "$OUT/pytest-color.log"
/usr/bin/python3 -m pytest -vv -p no:cacheprovider --color=yes test_sample.py >> "$OUT/pytest-color.log" 2>&1
cd "$W" || exit 1

# ---------------------------------------------------------------- npm (offline, local packages)
mkdir -p npm/app npm/libs/left-pad-local npm/libs/fmt-local && cd npm || exit 1
cat > libs/left-pad-local/package.json <<'EOF'
{ "name": "left-pad-local", "version": "1.3.0", "main": "index.js", "license": "MIT" }
EOF
echo 'module.exports = (s, n, c = " ") => String(s).padStart(n, c);' > libs/left-pad-local/index.js
cat > libs/fmt-local/package.json <<'EOF'
{ "name": "fmt-local", "version": "0.2.1", "main": "index.js", "license": "ISC",
  "dependencies": { "left-pad-local": "file:../left-pad-local" } }
EOF
echo 'const pad = require("left-pad-local"); module.exports = (n) => pad(n, 8, "0");' > libs/fmt-local/index.js
cat > app/package.json <<'EOF'
{
  "name": "ci-sample-app",
  "version": "1.0.0",
  "description": "a sample app for the redaction corpus",
  "main": "index.js",
  "scripts": { "test": "node -e \"console.log(require('fmt-local')(42))\"", "build": "node build.js" },
  "dependencies": { "fmt-local": "file:../libs/fmt-local", "left-pad-local": "file:../libs/left-pad-local" },
  "license": "MIT"
}
EOF
echo 'console.log("building", process.version); console.warn("warning: no config, using defaults");' > app/build.js
echo 'module.exports = require("fmt-local");' > app/index.js
cd app || exit 1
export npm_config_cache="$W/npm-cache" npm_config_update_notifier=false npm_config_fund=false
{
    echo '$ npm install --offline --no-audit --install-links --loglevel=verbose'
    npm install --offline --no-audit --install-links --loglevel=verbose 2>&1
    echo '$ npm ls --all'
    npm ls --all 2>&1
    echo '$ npm test'
    npm test 2>&1
    echo '$ npm run build'
    npm run build 2>&1
    echo '$ npm pack --dry-run'
    npm pack --dry-run 2>&1
    rm -rf node_modules
    echo '$ npm ci --offline (after adding a registry dependency not in the cache)'
    node -e 'const p=require("./package.json"); p.dependencies["left-pad"]="^1.3.0"; require("fs").writeFileSync("package.json", JSON.stringify(p, null, 2))'
    npm ci --offline --no-audit 2>&1
    echo "[exit $?]"
    echo '$ npm install --offline --no-audit'
    npm install --offline --no-audit 2>&1
    echo "[exit $?]"
    # dependencies as local tarballs: the lockfile then carries sha512 integrity strings
    mkdir -p ../app2 && cd ../app2 || exit 1
    (cd ../libs/left-pad-local && npm pack --pack-destination "$W/npm" 2>&1)
    (cd ../libs/fmt-local && npm pack --pack-destination "$W/npm" 2>&1)
    echo '{"name":"ci-sample-app2","version":"2.0.0","private":true}' > package.json
    echo '$ npm install --offline --no-audit ../left-pad-local-1.3.0.tgz ../fmt-local-0.2.1.tgz'
    npm install --offline --no-audit ../left-pad-local-1.3.0.tgz ../fmt-local-0.2.1.tgz 2>&1
    echo '$ cat package-lock.json'
    cat package-lock.json
    echo '$ npm ls'
    npm ls 2>&1
} > "$OUT/npm.log"
cd "$W" || exit 1

# ---------------------------------------------------------------- apt / dpkg
{
    echo '$ apt-get install --simulate -o Debug::NoLocking=1 valgrind cppcheck shellcheck'
    apt-get install --simulate -o Debug::NoLocking=1 valgrind cppcheck shellcheck 2>&1
    echo '$ apt-get install --simulate --reinstall make ninja-build'
    apt-get install --simulate --reinstall -o Debug::NoLocking=1 make ninja-build 2>&1
    echo '$ apt-cache policy gcc libsodium23 python3 nodejs openssl'
    apt-cache policy gcc libsodium23 python3 nodejs openssl 2>&1
    echo '$ apt-cache show --no-all-versions make'
    apt-cache show --no-all-versions make 2>&1
} > "$OUT/apt.log"
dpkg -l > "$OUT/dpkg-l.log" 2>&1

# apt-get download through a pty (so apt draws its \r progress line) from a flat repository
# of cached .debs served on 127.0.0.1; private lists and cache, the system's are not touched.
mkdir -p aptrepo/debs aptstate/lists/partial aptcache/archives/partial aptdl
for p in autoconf automake autopoint autotools-dev bash-completion curl; do
    cp /var/cache/apt/archives/${p}_*.deb aptrepo/debs/ 2>/dev/null
done
(cd aptrepo && dpkg-scanpackages -m debs /dev/null 2>/dev/null > Packages)
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 -m http.server "$PORT" --bind 127.0.0.1 --directory aptrepo >/dev/null 2>&1 &
HTTP_PID=$!
sleep 1
echo "deb [trusted=yes] http://127.0.0.1:$PORT/ ./" > aptsources.list
APTOPTS="-o Dir::Etc::SourceList=$W/aptsources.list -o Dir::Etc::SourceParts=/nonexistent \
  -o Dir::State::Lists=$W/aptstate/lists -o Dir::Cache=$W/aptcache \
  -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Debug::NoLocking=1 \
  -o Acquire::Languages=none -o APT::Sandbox::User=root"
cd aptdl || exit 1
{
    script -qec "apt-get $APTOPTS update" /dev/null
    script -qec "apt-get $APTOPTS -o Dpkg::Progress-Fancy=1 download autoconf automake autopoint autotools-dev bash-completion curl" /dev/null
} > "$OUT/apt-download-tty.log" 2>&1
cd "$W" || exit 1
kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null; HTTP_PID=

# ---------------------------------------------------------------- set -x traces
cat > job.sh <<'EOF'
set -x
BUILD_DIR="build dir"
VERSION=$(printf '%s.%s.%s' 1 4 2)
FLAGS='-O2 -g -Wall'
mkdir -p "$BUILD_DIR/out"
for f in a.c b.c "name with spaces.c" "it's.c"; do
    printf 'int f_%d(void) { return %d; }\n' ${#f} ${#f} > "$BUILD_DIR/$f"
done
cd "$BUILD_DIR" && ls -1 | sort
msg="release $VERSION (\"stable\") built with $FLAGS"
echo "$msg" | tr a-z A-Z
case "$VERSION" in 1.*) echo "major one";; *) echo other;; esac
if [ -n "${CI:-}" ]; then echo in-ci; else echo local; fi
sum=0; for i in 1 2 3 4 5; do sum=$((sum + i)); done; echo "sum=$sum"
grep -c return ./*.c || true
cd .. && rm -rf "$BUILD_DIR"
EOF
(bash job.sh) > "$OUT/bash-xtrace.log" 2>&1
(dash job.sh) > "$OUT/dash-xtrace.log" 2>&1

# ---------------------------------------------------------------- git log --stat
git -C "$REPO" log --stat -n 120 --no-color > "$OUT/git-log-stat.log"

# ---------------------------------------------------------------- base64 / xxd -p of an ELF
cat > hello.c <<'EOF'
#include <stdio.h>
int main(void) { puts("hello from the corpus"); return 0; }
EOF
gcc -O2 -o hello hello.c && strip hello
base64 hello > "$OUT/elf-base64.txt"
xxd -p hello > "$OUT/elf-xxd-p.txt"

# ---------------------------------------------------------------- make / ninja -v
mkdir -p mk/src && cd mk || exit 1
for m in util parse main; do
    printf '#include <stdio.h>\nint %s_fn(int x) { return x * %d; }\n' "$m" "${#m}" > "src/$m.c"
done
cat >> src/main.c <<'EOF'
int util_fn(int); int parse_fn(int);
int main(void) { printf("%d\n", util_fn(1) + parse_fn(2) + main_fn(3)); return 0; }
EOF
cat > Makefile <<'EOF'
CC ?= cc
CFLAGS ?= -O2 -g -Wall -Wextra
OBJS = build/util.o build/parse.o build/main.o
all: build/app
build/app: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^
build/%.o: src/%.c | build
	$(CC) $(CFLAGS) -MMD -c -o $@ $<
build:
	mkdir -p build
check: build/app
	./build/app
	$(MAKE) -C . missing-target
clean:
	rm -rf build
.PHONY: all check clean
EOF
{ echo '$ make -j2 check'; make -j2 check 2>&1; echo "[exit $?]"; } > "$OUT/make.log"
cat > meson.build <<'EOF'
project('corpus-app', 'c', version: '0.1.0', default_options: ['warning_level=3'])
lib = static_library('util', 'src/util.c', 'src/parse.c')
executable('app', 'src/main.c', link_with: lib)
test('runs', find_program('true'))
EOF
{
    echo '$ meson setup nb'
    meson setup nb 2>&1
    echo '$ ninja -C nb -v'
    ninja -C nb -v 2>&1
    echo '$ ninja -C nb -v test'
    ninja -C nb -v test 2>&1
} > "$OUT/meson-ninja-v.log"
cd "$W" || exit 1

# ---------------------------------------------------------------- openssl test certificate
openssl req -x509 -newkey rsa:2048 -nodes -keyout test.key -out test-cert.pem -days 30 \
    -subj "/C=XX/O=secrets-run corpus/CN=corpus.test" \
    -addext "subjectAltName=DNS:corpus.test,DNS:localhost,IP:127.0.0.1" 2>/dev/null
rm -f test.key
cp test-cert.pem "$OUT/cert.pem"
openssl x509 -in test-cert.pem -text -noout > "$OUT/cert-x509-text.log"

ls -l "$OUT"
