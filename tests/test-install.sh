#!/bin/bash
# meson install into a DESTDIR: the installed binary runs, every command has
# its man page and each renders without a warning, the completions parse and
# complete, and every long option of every --help is in its man page and in
# the bash completion (one table drives them all: this proves it).
. "$(dirname "$0")/lib.sh"
: "${BUILD_ROOT:?BUILD_ROOT must name the build directory}"

dest=$WORK/dest
run_cmd meson install -C "$BUILD_ROOT" --no-rebuild --quiet --destdir "$dest"
expect "meson install --destdir" 0

# Where each file went, as meson says (prefix and directories are options).
meson introspect --installed "$BUILD_ROOT" >"$WORK/installed.json"
installed() {
        python3 -c 'import json, sys
for src, dst in json.load(open(sys.argv[1])).items():
    if dst.endswith(sys.argv[2]):
        print(dst)' "$WORK/installed.json" "$1" | head -n 1
}
bin=$dest$(installed /bin/bmapscan)
bash_completion=$dest$(installed completions/bmapscan)
[ -x "$bin" ] && pass "the binary is installed: ${bin#"$dest"}" || fail "no installed binary in $(cat "$WORK/installed.json")"

run_cmd "$bin" --version
expect "installed bmapscan --version" 0
grep -qE '^bmapscan [0-9]+\.[0-9]+\.[0-9]+$' "$WORK/out" && pass "installed --version: $(cat "$WORK/out")" ||
        fail "installed --version: $(cat "$WORK/out")"
run_cmd "$bin" scan --help
expect "installed bmapscan scan --help" 0
grep -q '^Usage: bmapscan scan' "$WORK/out" && pass "installed scan --help" || fail "installed scan --help: $(head -3 "$WORK/out")"

# The commands, as the tool lists them.
"$bin" --help | sed -n 's/^  \([a-z]\+\) .*/\1/p' >"$WORK/commands"
[ -s "$WORK/commands" ] && pass "commands: $(echo $(cat "$WORK/commands"))" || fail "no commands in --help"

# man pages: one per command and bmapscan(1), each without a warning from
# groff nor from man as lintian runs it.
check_page() {
        local page=$1 file
        file=$dest$(installed "/man1/$page.1")
        if [ "$file" = "$dest" ] || [ ! -s "$file" ]; then
                fail "man page $page.1 is not installed"
                return
        fi
        pass "man page $page.1 installed at ${file#"$dest"}"
        groff -man -ww -z -Tutf8 "$file" >"$WORK/groff" 2>&1 || true
        [ ! -s "$WORK/groff" ] && pass "$page.1: groff -ww: no warnings" || fail "$page.1: groff: $(head -5 "$WORK/groff")"
        LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$file" 2>"$WORK/manerr" >/dev/null || true
        [ ! -s "$WORK/manerr" ] && pass "$page.1: man --warnings: none" || fail "$page.1: man: $(head -5 "$WORK/manerr")"
        for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" "SEE ALSO"; do
                grep -q "^\.SH \"\?$section\"\?$" "$file" || fail "$page.1 has no $section section"
        done
        MANWIDTH=80 man -l "$file" 2>/dev/null | col -b >"$WORK/$page.txt"
}
if command -v groff >/dev/null && command -v man >/dev/null; then
        check_page bmapscan
        while read -r c; do
                check_page "bmapscan-$c"
                # Every long option of the command's --help, in its man page
                # and in the bash completion.
                "$bin" "$c" --help | sed -n '/^Options:/,/^$/s/^ *\(-[a-zA-Z], \)\?\(--[a-z-]*\).*/\2/p' >"$WORK/options"
                missing=
                while read -r o; do
                        grep -qe "$o\b" "$WORK/bmapscan-$c.txt" || missing="$missing man:$o"
                        grep -qe "$o\b" "$bash_completion" || missing="$missing bash:$o"
                done <"$WORK/options"
                [ -s "$WORK/options" ] && [ -z "$missing" ] && pass "$c: all $(wc -l <"$WORK/options") options of --help in the man page and the bash completion" ||
                        fail "$c: missing:${missing:- no options in --help}"
                grep -q -- '--quiet' "$WORK/options" && grep -q -- '--verbose' "$WORK/options" && pass "$c --help lists -q and -v" ||
                        fail "$c --help lacks --quiet or --verbose"
                # EXAMPLES runs the command; the README's sample output and
                # pictures stay in DESCRIPTION, beside the text about them.
                sed -n '/^EXAMPLES$/,/^[A-Z]/p' "$WORK/bmapscan-$c.txt" | grep "bmapscan $c " >/dev/null &&
                        pass "bmapscan-$c.1: EXAMPLES runs bmapscan $c" ||
                        fail "bmapscan-$c.1: EXAMPLES: $(sed -n '/^EXAMPLES$/,/^[A-Z]/p' "$WORK/bmapscan-$c.txt" | head -3)"
        done <"$WORK/commands"
        sed -n '/^DESCRIPTION$/,/^OPTIONS$/p' "$WORK/bmapscan-info.txt" | grep -F "[#FFFFFF" >/dev/null &&
                pass "bmapscan-info.1: the disk picture in DESCRIPTION, after the text that announces it" ||
                fail "bmapscan-info.1: no disk picture in DESCRIPTION"
        ! sed -n '/^ENVIRONMENT$/,/^[A-Z]/p' "$WORK/bmapscan-info.txt" | grep -- --keyring >/dev/null &&
                pass "bmapscan-info.1: ENVIRONMENT names no --keyring (info has none)" ||
                fail "bmapscan-info.1: ENVIRONMENT names --keyring"
else
        echo "skip man page checks: no groff or man"
fi

# bash: parses, and completes.
if [ -s "$bash_completion" ] && bash -n "$bash_completion"; then
        pass "bash completion parses (${bash_completion#"$dest"})"
else
        fail "bash completion missing or does not parse: $bash_completion"
fi
complete_bash() {
        # complete_bash WORD...: the completions of the last word.
        bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _bmapscan; printf "%s\n" "${COMPREPLY[@]}"' \
                _ "$bash_completion" "$@"
}
complete_bash bmapscan sc >"$WORK/c" 2>&1
grep -qx scan "$WORK/c" && pass "bash: 'sc' completes to scan" || fail "bash: 'sc': $(cat "$WORK/c")"
complete_bash bmapscan -q scan -- >"$WORK/c" 2>&1
grep -qx -- --map "$WORK/c" && grep -qx -- --quiet "$WORK/c" && pass "bash: 'scan --' offers --map and --quiet" ||
        fail "bash: 'scan --': $(echo $(cat "$WORK/c"))"
complete_bash bmapscan scan --block-size '' >"$WORK/c" 2>&1
grep -qx 4096 "$WORK/c" && pass "bash: --block-size offers its words" || fail "bash: --block-size: $(echo $(cat "$WORK/c"))"
# copy's DEST: the block devices /sys/block has (not empty), whole disks
# before partitions, then files; IMAGE is a file, never a device.
devices=$(for d in /sys/block/*; do [ -r "$d/size" ] && [ "$(cat "$d/size")" != 0 ] && echo "/dev/${d##*/}"; done || true)
mkdir "$WORK/files" && : >"$WORK/files/image.img"
complete_bash bmapscan copy --bmap x.bmap "$WORK/files/image.img" '' >"$WORK/c" 2>&1
complete_bash bmapscan copy '' >"$WORK/first" 2>&1
if [ -n "$devices" ]; then
        first=$(echo "$devices" | head -n 1)
        grep -qx "$first" "$WORK/c" && pass "bash: copy DEST offers the block device $first" ||
                fail "bash: copy DEST lacks $first: $(head -c 300 "$WORK/c")"
        ! grep -qx "$first" "$WORK/first" && pass "bash: copy IMAGE offers no block device" ||
                fail "bash: copy IMAGE offers $first"
else
        ! grep -q '^/dev/' "$WORK/c" && pass "bash: no block devices here, none offered" ||
                fail "bash: copy DEST offers $(grep '^/dev/' "$WORK/c" | head -3)"
fi
# - (standard input) is IMAGE, so the word after it is DEST; with
# --bmap=FILE (three words to bash: = breaks words) the next word is IMAGE.
complete_bash bmapscan copy --bmap x.bmap - '' >"$WORK/stdin" 2>&1
complete_bash bmapscan copy --bmap = x.bmap '' >"$WORK/eq" 2>&1
if [ -n "$devices" ]; then
        grep -qx "$first" "$WORK/stdin" && pass "bash: copy - DEST offers the block device $first" ||
                fail "bash: copy - DEST lacks $first: $(head -c 300 "$WORK/stdin")"
        ! grep -qx "$first" "$WORK/eq" && pass "bash: copy --bmap=FILE IMAGE offers no block device" ||
                fail "bash: copy --bmap=FILE IMAGE offers $first"
        # A device is a file in /dev too: offered once.
        complete_bash bmapscan copy x.img "$first" >"$WORK/dev" 2>&1
        [ "$(grep -cx "$first" "$WORK/dev")" = 1 ] && pass "bash: copy DEST $first offered once" ||
                fail "bash: copy DEST $first: $(echo $(cat "$WORK/dev"))"
fi
complete_bash bmapscan scan --block-size = >"$WORK/c" 2>&1
grep -qx 4096 "$WORK/c" && pass "bash: --block-size= offers its words" || fail "bash: --block-size=: $(echo $(cat "$WORK/c"))"
complete_bash bmapscan scan --block-size = 40 >"$WORK/c" 2>&1
grep -qx 4096 "$WORK/c" && pass "bash: --block-size=40 offers 4096" || fail "bash: --block-size=40: $(echo $(cat "$WORK/c"))"
complete_bash bmapscan verify img "$WORK/files/im" >"$WORK/c" 2>&1
grep -qx "$WORK/files/image.img" "$WORK/c" && pass "bash: verify DEST offers files" || fail "bash: verify DEST: $(cat "$WORK/c")"

# zsh and fish: installed where their vendor completions go, and parse.
zsh_completion=$dest$(installed /_bmapscan)
fish_completion=$dest$(installed /bmapscan.fish)
[ -s "$zsh_completion" ] && pass "zsh completion installed at ${zsh_completion#"$dest"}" || fail "zsh completion not installed"
[ -s "$fish_completion" ] && pass "fish completion installed at ${fish_completion#"$dest"}" || fail "fish completion not installed"
if command -v zsh >/dev/null; then
        zsh -n "$zsh_completion" && pass "zsh completion parses" || fail "zsh -n $zsh_completion"
fi
if command -v fish >/dev/null; then
        fish --no-execute "$fish_completion" && pass "fish completion parses" || fail "fish --no-execute $fish_completion"
        # And completes: the options of scan, from the table.
        fish -c "source '$fish_completion'; complete -C 'bmapscan scan --ma'" >"$WORK/c" 2>&1 || true
        grep -q -- '^--map' "$WORK/c" && pass "fish: 'scan --ma' offers --map" || fail "fish: 'scan --ma': $(cat "$WORK/c")"
fi

finish
