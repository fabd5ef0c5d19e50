# One `apt-get update` for two checks, into a scratch apt directory (the image's lists, caches and
# lock untouched; its own configuration, keys, proxies and pins kept): every source's signed
# InRelease (config.apt_update_works), and the Packages index of the -security suites alone
# (config.no_pending_security_updates), without the ~10 MB of the others' indexes.  Every index
# target is cleared by a config file read after the image's own (-c); Packages is declared again,
# off by default, and the copies of the image's sources turn it on for the -security suites (deb822
# stanzas mixing suites are split).  `apt list --upgradable` then names the installed packages with
# a newer candidate there (without the resolver, which refuses to plan while any dependency is
# broken).  Each step's outcome is a "## STEP N" line after its output, for the checks to read.
d=$(mktemp -d) || exit 2
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/lists/partial" "$d/parts" "$d/cache" && chown -R _apt "$d" 2>/dev/null
cat >"$d/targets.conf" <<'CONF'
#clear Acquire::IndexTargets;
Acquire::IndexTargets::deb::Packages {
    MetaKey "$(COMPONENT)/binary-$(ARCHITECTURE)/Packages";
    ShortDescription "Packages";
    Description "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) Packages";
    flatMetaKey "Packages";
    flatDescription "$(RELEASE) Packages";
    DefaultEnabled "false";
};
CONF
# one-line sources: a -security line gains the option "target=Packages"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -E '/^[[:space:]]*deb[[:space:]].*-security([[:space:]/]|$)/{
        s/^([[:space:]]*deb[[:space:]]+)\[/\1[ target=Packages /; t
        s/^([[:space:]]*deb[[:space:]]+)/\1[ target=Packages ] /; }' "$f"
done >"$d/sources.list"
# deb822: an enabled deb stanza naming -security suites is split; their copy gains "Targets: Packages"
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
        security = ""; other = ""; m = split(suites, word, /[[:space:]]+/)
        for (i = 2; i <= m; i++)
            if (word[i] ~ /-security\/?$/) security = security " " word[i]; else other = other " " word[i]
        if (security == "" || off || types !~ /[[:space:]]deb([[:space:]]|$)/) { print $0 "\n"; next }
        if (other != "") {
            for (i = 1; i <= n; i++) print (line[i] ~ /^Suites:/ ? "Suites:" other : line[i])
            print ""
        }
        for (i = 1; i <= n; i++)
            if (line[i] !~ /^Targets(-Add|-Remove)?:/) print (line[i] ~ /^Suites:/ ? "Suites:" security : line[i])
        print "Targets: Packages\n"
    }' "$f" >"$d/parts/${f##*/}"
done
enabled='^[[:space:]]*deb[[:space:]]+\[ target=Packages|^Targets: Packages$'
echo "## sources $(cat "$d/sources.list" "$d/parts/"* 2>/dev/null | grep -cE "$enabled")"
set -- -c "$d/targets.conf" -o Dir::Etc::SourceList="$d/sources.list" \
    -o Dir::Etc::SourceParts="$d/parts" -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" \
    -o Dir::Cache::srcpkgcache= -o Debug::NoLocking=1
timeout -k 2 45 apt-get "$@" -q update -o Acquire::Retries=0 -o Acquire::http::Timeout=10 \
    -o Acquire::https::Timeout=10 2>&1
echo "## update $?"
apt "$@" list --upgradable >"$d/upgradable" 2>&1
rc=$?
grep -vE '^(Listing|WARNING: apt does not have a stable CLI|$)' "$d/upgradable"
echo "## upgradable $rc"
