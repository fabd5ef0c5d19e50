# What apt would install from the image's -security sources: they alone are fetched into a scratch
# apt directory (the image's own sources, keys, proxies and pins are kept; its lists and caches
# untouched; the package cache update builds is kept there for the listing), then
# `apt list --upgradable` says which installed packages have a newer candidate
# there (without the resolver, which refuses to plan while any dependency is broken).  Each step's
# outcome is a "## STEP STATUS" line after its output, for the check to read.
d=$(mktemp -d) || exit 2
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/lists/partial" "$d/parts" "$d/cache" && chown -R _apt "$d" 2>/dev/null
# one-line sources as they are; deb822 stanzas with their other suites (and deb-src) dropped
grep -hsE '^[[:space:]]*deb[[:space:]].*-security([[:space:]/]|$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list >"$d/security.list"
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = "" }
    {
        n = split($0, line, "\n"); types = ""; suites = ""; off = 0
        for (i = 1; i <= n; i++) {
            if (line[i] ~ /^Types:/) types = line[i]
            if (line[i] ~ /^Suites:/) suites = line[i]
            if (line[i] ~ /^Enabled:[[:space:]]*[Nn]o/) off = 1
        }
        if (off || types !~ /[[:space:]]deb([[:space:]]|$)/) next
        keep = ""; m = split(suites, word, /[[:space:]]+/)
        for (i = 2; i <= m; i++) if (word[i] ~ /-security\/?$/) keep = keep " " word[i]
        if (keep == "") next
        for (i = 1; i <= n; i++) {
            if (line[i] ~ /^Types:/) line[i] = "Types: deb"
            else if (line[i] ~ /^Suites:/) line[i] = "Suites:" keep
            print line[i]
        }
        print ""
    }' "$f"
done >"$d/parts/security.sources"
echo "## sources $(cat "$d/security.list" "$d/parts/security.sources" | grep -cE '^[[:space:]]*deb[[:space:]]|^Suites:')"
set -- -o Dir::Etc::SourceList="$d/security.list" -o Dir::Etc::SourceParts="$d/parts" \
    -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::Cache::srcpkgcache= \
    -o Debug::NoLocking=1 -o Acquire::Languages=none
timeout -k 2 45 apt-get "$@" -q update -o Acquire::Retries=0 -o Acquire::http::Timeout=10 \
    -o Acquire::https::Timeout=10 2>&1
echo "## update $?"
apt "$@" list --upgradable >"$d/upgradable" 2>&1
rc=$?
grep -vE '^(Listing|WARNING: apt does not have a stable CLI|$)' "$d/upgradable"
echo "## upgradable $rc"
