#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes bmapscan's man pages and shell completions at build time.

The options, their help lines, the commands and their summaries come from
the tables of src/commands.c, exported as JSON by src/gen-doc; the prose of
each man page comes from README.md, whose command sections are the source
of truth for the wording (converted from the small Markdown subset the
README uses: paragraphs, inline code and bold, bullet lists, tables and
fenced code blocks).

    render.py man PAGE TABLES.json README.md      bmapscan or bmapscan-COMMAND
    render.py bash|zsh|fish TABLES.json            a completion script
The output goes to stdout.
"""

import json
import re
import sys

# ------------------------------------------------------------------ roff


def roff_escape(text):
    """Plain text for roff: backslashes, and anything outside ASCII as a
    named glyph, so that groff needs no input encoding."""
    text = text.replace("\\", "\\e")
    return "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c) for c in text)


def roff_line(line):
    """A text line must not start with a control character."""
    if line.startswith((".", "'")):
        return "\\&" + line
    return line


def inline(text, state):
    """Markdown inline markup to roff: `code` in bold with real minus signs,
    **bold**; state['bold'] carries an open ** across the lines of a block."""
    out = []
    for i, part in enumerate(text.split("`")):
        if i % 2:
            out.append("\\fB" + roff_escape(part).replace("-", "\\-") + "\\fP")
            continue
        pieces = roff_escape(part).split("**")
        for k, piece in enumerate(pieces):
            if k:
                state["bold"] = not state["bold"]
                out.append("\\fB" if state["bold"] else "\\fR")
            # *emphasis*, never a glob's star (*.img is in backticks anyway).
            out.append(re.sub(r"(?<![\w*])\*(\w[^*]*?)\*(?![\w*])", r"\\fI\1\\fR", piece))
    return "".join(out)


def option_roff(o):
    s = "\\fB\\-\\-%s\\fR" % o["long"]
    if o["short"]:
        s = "\\fB\\-%s\\fR, %s" % (o["short"], s)
    if o["arg"]:
        s += " \\fI%s\\fR" % o["arg"]
    return s


# ------------------------------------------------------------------ Markdown


def readme_sections(readme):
    """{heading text: [lines]} for every ## and ### heading."""
    sections, current = {}, None
    for line in readme.splitlines():
        m = re.match(r"^(#{1,3}) (.*)$", line)
        if m:
            current = m.group(2)
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def markdown_to_roff(lines, examples=None):
    """Converts Markdown lines to roff lines. With examples (a list), the
    first fenced code block goes there instead (the EXAMPLES section)."""
    out = []
    i = 0
    state = {"bold": False}
    in_item = False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i].lstrip())
                i += 1
            i += 1
            code = [".nf"] + [roff_line(roff_escape(b).replace("-", "\\-")) for b in block] + [".fi"]
            if examples is not None and not examples:
                examples.extend(code)
                continue
            nested = in_item and indent > 0
            out += ([".IP \"\" 2"] if nested else [".PP"]) + [".RS 4"] + code + [".RE"]
            continue
        if stripped.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            # The header and the --- line go; each row is a tagged paragraph.
            for row in rows[2:]:
                out += [".TP", roff_line(inline(row[0], state)), roff_line(inline(" | ".join(row[1:]), state))]
            in_item = False
            continue
        if stripped.startswith("- "):
            text = [stripped[2:]]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip() and \
                    not lines[i].strip().startswith("```"):
                text.append(lines[i].strip())
                i += 1
            out.append(".IP \\(bu 2")
            out += [roff_line(inline(t, state)) for t in text]
            in_item = True
            continue
        # A paragraph: every line up to a blank one or another block.
        text = []
        while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(("```", "|", "- ")):
            text.append(lines[i].strip())
            i += 1
        if in_item and indent > 0:
            out.append(".IP \"\" 2")
        else:
            out.append(".PP")
            in_item = False
        out += [roff_line(inline(t, state)) for t in text]
    return out


# ------------------------------------------------------------------ man pages

EXIT_STATUS = [
    ".TP", "\\fB0\\fR", "success",
    ".TP", "\\fB1\\fR", "the operation failed (one line on standard error says what and where)",
    ".TP", "\\fB2\\fR", "usage error: an unknown or malformed option or argument",
]

FILES_BMAP = [
    ".TP", "\\fIIMAGE\\fB.bmap\\fR",
    "The bmap of \\fIIMAGE\\fR, looked for as \\fBbmaptool\\fR(1) looks for it: \\fIIMAGE\\fB.bmap\\fR, then the "
    "name with one extension stripped at a time (\\fBa.img.xz\\fR: \\fBa.img.xz.bmap\\fR, \\fBa.img.bmap\\fR, "
    "\\fBa.bmap\\fR), unless \\fB\\-\\-bmap\\fR names it. Beside a URL, the same in its last path segment, a "
    "\\fB?query\\fR kept at the end. With \\fB\\-\\-member\\fR \\fINAME\\fR, \\fINAME\\fB.bmap\\fR (and its "
    "stripped names) beside \\fIIMAGE\\fR comes first.",
    ".TP", "\\fIBMAP\\fB.asc\\fR, \\fIBMAP\\fB.sig\\fR",
    "The detached signature of a bmap, unless \\fB\\-\\-bmap\\-sig\\fR names it.",
    ".TP", "\\fB~/.netrc\\fR",
    "Credentials for URLs that do not carry them.",
    ".TP", "\\fB~/.gnupg\\fR",
    "The GnuPG home whose keyring checks a signature when \\fB\\-\\-keyring\\fR is not given "
    "(\\fBGNUPGHOME\\fR moves it).",
]

ENVIRONMENT_HTTP = [
    ".TP", "\\fBhttp_proxy\\fR, \\fBhttps_proxy\\fR, \\fBno_proxy\\fR (also \\fBHTTPS_PROXY\\fR, \\fBALL_PROXY\\fR, "
    "\\fBNO_PROXY\\fR)",
    "The proxy for http:// and https:// URLs, and the hosts reached without it, as libcurl reads them.",
]
ENVIRONMENT_GPG = [
    ".TP", "\\fBGNUPGHOME\\fR",
    "The GnuPG home whose keyring checks bmap signatures (default \\fB~/.gnupg\\fR); "
    "\\fB\\-\\-keyring\\fR uses a temporary home instead.",
    ".TP", "\\fBHOME\\fR",
    "Where \\fB~/.netrc\\fR and \\fB~/.gnupg\\fR are.",
]


def page_header(name, summary, version):
    return [
        '.TH "%s" 1 "" "bmapscan %s" "User Commands"' % (name.upper(), version),
        ".SH NAME",
        "%s \\- %s" % (name.replace("-", "\\-"), roff_escape(summary)),
    ]


def options_section(options):
    out = []
    for o in options:
        out += [".TP", option_roff(o), roff_line(roff_escape(o["help"]) +
                                                 (" (repeatable)" if o["repeatable"] else ""))]
    return out


def see_also(tables, this):
    pages = ["bmapscan"] + ["bmapscan-" + c["name"] for c in tables["commands"]]
    refs = ["\\fB%s\\fR(1)" % p.replace("-", "\\-") for p in pages if p != this]
    refs.append("\\fBbmaptool\\fR(1)")
    return [".SH SEE ALSO", ",\n".join(refs)]


def synopsis(c):
    words = []
    for o in c["options"]:
        w = "[\\fB\\-\\-%s\\fR" % o["long"]
        if o["arg"]:
            w += " \\fI%s\\fR" % o["arg"]
        w += "]" + ("..." if o["repeatable"] else "")
        words.append(w)
    operands = []
    for word in c["operands"].split(" "):
        operands.append(re.sub(r"([A-Z][A-Z]+)", r"\\fI\1\\fR", word.replace("-", "\\-")))
    return [".SH SYNOPSIS", ".B bmapscan %s" % c["name"], " ".join(words + operands)]


def man_command(tables, c, sections):
    heading = next((h for h in sections if h.startswith("`bmapscan %s " % c["name"])), None)
    if heading is None:
        sys.exit("render.py: README.md has no section '### `bmapscan %s ...`'" % c["name"])
    body = sections[heading]
    # An "Options: ..." paragraph repeats what OPTIONS lists from the table.
    while body and not body[0].strip():
        body = body[1:]
    if body and body[0].startswith("Options:"):
        body = body[next(i for i, line in enumerate(body) if not line.strip()):]
    examples = []
    description = markdown_to_roff(body, examples)
    name = "bmapscan-" + c["name"]
    out = page_header(name, c["summary"], tables["version"])
    out += synopsis(c)
    out += [".SH DESCRIPTION"] + description
    out += [".SH OPTIONS"] + options_section(c["options"] + tables["global"])
    out += [".SH EXIT STATUS"] + EXIT_STATUS
    if c["name"] == "verify":
        out += [".PP", "Status 1 also when a range of \\fIDEST\\fR does not match its checksum."]
    if examples:
        out += [".SH EXAMPLES", ".PP", ".RS 4"] + examples + [".RE"]
    if c["name"] in ("copy", "verify"):
        out += [".SH FILES"] + FILES_BMAP
        out += [".SH ENVIRONMENT"] + ENVIRONMENT_HTTP + ENVIRONMENT_GPG
    elif c["name"] == "info":
        out += [".SH ENVIRONMENT"] + ENVIRONMENT_GPG[:3]
    out += see_also(tables, name)
    return out


def man_main(tables, sections, readme):
    intro = []
    for line in readme.splitlines()[1:]:
        if line.startswith("## "):
            break
        intro.append(line)
    commands = sections["Commands"]
    # The usage line of the Commands section is the SYNOPSIS already.
    while commands and not commands[0].strip().startswith("```"):
        commands = commands[1:]
    end = next(i for i in range(1, len(commands)) if commands[i].strip().startswith("```"))
    out = page_header("bmapscan", "make raw disk images cheap to store and fast and safe to flash",
                      tables["version"])
    out += [".SH SYNOPSIS", ".B bmapscan",
            "[\\fB\\-q\\fR|\\fB\\-v\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] \\fIARGS\\fR...",
            ".br", ".B bmapscan", "\\fB\\-\\-help\\fR | \\fB\\-\\-version\\fR"]
    out += [".SH DESCRIPTION"] + markdown_to_roff(intro) + markdown_to_roff(commands[end + 1:])
    out += [".SH COMMANDS"]
    for c in tables["commands"]:
        out += [".TP", "\\fBbmapscan\\-%s\\fR(1)" % c["name"], roff_escape(c["summary"])]
    out += [".SH OPTIONS", ".PP", "These options may stand before or after the command."]
    out += options_section(tables["global"])
    out += [".SH EXIT STATUS"] + EXIT_STATUS
    out += [".SH EXAMPLES", ".PP", ".RS 4", ".nf",
            "bmapscan scan \\-o vendor.img.bmap vendor.img",
            "bmapscan sparse vendor.img",
            "bmapscan copy vendor.img.xz /dev/sdX",
            "bmapscan info vendor.img.bmap",
            ".fi", ".RE"]
    out += [".SH FILES"] + FILES_BMAP
    out += [".SH ENVIRONMENT"] + ENVIRONMENT_HTTP + ENVIRONMENT_GPG
    if "The bmap formats we read" in sections:
        out += [".SH BMAP FORMATS"] + markdown_to_roff(sections["The bmap formats we read"])
    out += see_also(tables, "bmapscan")
    return out


# ------------------------------------------------------------------ completions


def forms(o):
    f = ["--" + o["long"]]
    if o["short"]:
        f.append("-" + o["short"])
    return f


def bash(tables):
    names = " ".join(c["name"] for c in tables["commands"])
    glob = " ".join(f for o in tables["global"] for f in forms(o))
    out = [
        "# bash completion for bmapscan: generated from its option tables (doc/render.py)",
        "",
        "# Block devices: whole disks first, then partitions; empty ones (unused",
        "# loop and ram devices) left out.",
        "_bmapscan_devices() {",
        "        local d p",
        "        for d in /sys/block/*; do",
        "                [ -r \"$d/size\" ] && [ \"$(<\"$d/size\")\" != 0 ] && printf '/dev/%s\\n' \"${d##*/}\"",
        "        done",
        "        for d in /sys/block/*; do",
        "                for p in \"$d/${d##*/}\"*; do",
        "                        [ -e \"$p/partition\" ] && [ \"$(<\"$p/size\")\" != 0 ] && printf '/dev/%s\\n' \"${p##*/}\"",
        "                done",
        "        done",
        "        return 0",
        "}",
        "",
        "_bmapscan_complete() {",
        "        local kind=$1 cur=$2",
        "        case $kind in",
        "        file)",
        "                compopt -o filenames 2>/dev/null",
        "                mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")",
        "                ;;",
        "        dest)",
        "                compopt -o filenames -o nosort 2>/dev/null",
        "                mapfile -t COMPREPLY < <(compgen -W \"$(_bmapscan_devices)\" -- \"$cur\"; compgen -f -- \"$cur\")",
        "                ;;",
        "        *)",
        "                COMPREPLY=()",
        "                ;;",
        "        esac",
        "}",
        "",
        "_bmapscan() {",
        "        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}",
        "        local i w cmd='' at=0 opts='' valued='' first='' rest='' n=0 skip=''",
        "        for ((i = 1; i < COMP_CWORD; i++)); do",
        "                case ${COMP_WORDS[i]} in",
        "                -*) ;;",
        "                *) cmd=${COMP_WORDS[i]}; at=$i; break ;;",
        "                esac",
        "        done",
        "        if [ -z \"$cmd\" ]; then",
        "                if [[ $cur == -* ]]; then",
        "                        mapfile -t COMPREPLY < <(compgen -W '%s' -- \"$cur\")" % glob,
        "                else",
        "                        mapfile -t COMPREPLY < <(compgen -W '%s' -- \"$cur\")" % names,
        "                fi",
        "                return 0",
        "        fi",
        "        case $cmd in",
    ]
    for c in tables["commands"]:
        opts = c["options"]
        valued = [o for o in opts if o["arg"]]
        out.append("        %s)" % c["name"])
        out.append("                opts='%s'" % " ".join(f for o in opts for f in forms(o)))
        out.append("                valued='%s'" % " ".join(f for o in valued for f in forms(o)))
        out.append("                first=%s rest=%s" % (c["first"], c["rest"]))
        out.append("                case $prev in")
        for o in valued:
            out.append("                %s)" % "|".join(forms(o)))
            if o["value"] == "words":
                out.append("                        mapfile -t COMPREPLY < <(compgen -W '%s' -- \"$cur\")" % o["words"])
            else:
                out.append("                        _bmapscan_complete %s \"$cur\"" % o["value"])
            out.append("                        return 0")
            out.append("                        ;;")
        out.append("                esac")
        out.append("                ;;")
    out += [
        "        *)",
        "                return 0",
        "                ;;",
        "        esac",
        "        if [[ $cur == -* ]]; then",
        "                mapfile -t COMPREPLY < <(compgen -W \"$opts %s\" -- \"$cur\")" % glob,
        "                return 0",
        "        fi",
        "        # Which operand is this: options and their values do not count.",
        "        for ((i = at + 1; i < COMP_CWORD; i++)); do",
        "                w=${COMP_WORDS[i]}",
        "                if [ -n \"$skip\" ]; then",
        "                        skip=''",
        "                elif [[ $w == -* ]]; then",
        "                        [[ \" $valued \" == *\" $w \"* ]] && skip=1",
        "                else",
        "                        n=$((n + 1))",
        "                fi",
        "        done",
        "        if [ $n = 0 ]; then",
        "                _bmapscan_complete \"$first\" \"$cur\"",
        "        else",
        "                _bmapscan_complete \"$rest\" \"$cur\"",
        "        fi",
        "        return 0",
        "}",
        "complete -F _bmapscan bmapscan",
    ]
    return out


def zsh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def zsh_desc(s):
    return re.sub(r"([\[\]:\\])", r"\\\1", s)


def zsh_action(o):
    if o["value"] == "file":
        return "_files"
    if o["value"] == "words":
        return "(%s)" % o["words"]
    if o["value"] == "dest":
        return "_bmapscan_dest"
    return " "


def zsh_specs(options):
    specs = []
    for o in options:
        rep = "*" if o["repeatable"] else ""
        desc = "[%s]" % zsh_desc(o["help"])
        for f in forms(o):
            name = f
            if o["arg"]:
                name += "=" if f.startswith("--") else "+"
                specs.append(zsh_quote("%s%s%s:%s:%s" % (rep, name, desc, o["arg"], zsh_action(o))))
            else:
                specs.append(zsh_quote("%s%s%s" % (rep, name, desc)))
    return specs


def zsh(tables):
    out = [
        "#compdef bmapscan",
        "# zsh completion for bmapscan: generated from its option tables (doc/render.py)",
        "",
        "# Block devices: whole disks first, then partitions; empty ones left out.",
        "_bmapscan_devices() {",
        "  local -a disks parts",
        "  local d p",
        "  for d in /sys/block/*(N); do",
        "    [[ -r $d/size && $(<$d/size) != 0 ]] && disks+=(/dev/${d:t})",
        "    for p in $d/${d:t}*(N); do",
        "      [[ -e $p/partition && $(<$p/size) != 0 ]] && parts+=(/dev/${p:t})",
        "    done",
        "  done",
        "  compadd -J disks -V disks -a disks",
        "  compadd -J partitions -V partitions -a parts",
        "}",
        "",
        "_bmapscan_dest() {",
        "  _alternative 'devices:block device:_bmapscan_devices' 'files:file:_files'",
        "}",
        "",
        "_bmapscan() {",
        "  local curcontext=$curcontext state line ret=1",
        "  local -a global commands",
        "  global=(",
    ]
    out += ["    " + s for s in zsh_specs(tables["global"])]
    out += ["  )", "  commands=("]
    out += ["    " + zsh_quote("%s:%s" % (c["name"], c["summary"].replace(":", "\\:"))) for c in tables["commands"]]
    out += [
        "  )",
        "  _arguments -C $global '1:command:->command' '*::argument:->argument' && ret=0",
        "  case $state in",
        "  command)",
        "    _describe -t commands 'bmapscan command' commands && ret=0",
        "    ;;",
        "  argument)",
        "    curcontext=${curcontext%:*:*}:bmapscan-$words[1]:",
        "    case $words[1] in",
    ]
    for c in tables["commands"]:
        first = zsh_action({"value": c["first"]})
        operands = [zsh_quote("1:%s:%s" % (c["operands"].split(" ")[0], first))]
        if c["rest"] != "none":
            operands.append(zsh_quote("*:%s:%s" % (c["operands"].split(" ")[1], zsh_action({"value": c["rest"]}))))
        out.append("    %s)" % c["name"])
        out.append("      _arguments $global \\")
        for s in zsh_specs(c["options"]) + operands:
            out.append("        %s \\" % s)
        out.append("        && ret=0")
        out.append("      ;;")
    out += [
        "    esac",
        "    ;;",
        "  esac",
        "  return ret",
        "}",
        "",
        "_bmapscan \"$@\"",
    ]
    return out


def fish_quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_option(condition, o):
    line = "complete -c bmapscan"
    if condition:
        line += " -n %s" % fish_quote(condition)
    if o["short"]:
        line += " -s %s" % o["short"]
    line += " -l %s" % o["long"]
    if o["arg"]:
        if o["value"] == "file":
            line += " -r -F"
        elif o["value"] == "words":
            line += " -x -a %s" % fish_quote(o["words"])
        elif o["value"] == "dest":
            line += " -r -F -a '(__bmapscan_devices)'"
        else:
            line += " -x"
    line += " -d %s" % fish_quote(o["help"])
    return line


def fish(tables):
    names = " ".join(c["name"] for c in tables["commands"])
    out = [
        "# fish completion for bmapscan: generated from its option tables (doc/render.py)",
        "",
        "# Block devices: whole disks first, then partitions; empty ones left out.",
        "function __bmapscan_devices",
        "    for d in /sys/block/*",
        "        test -r $d/size; and test (cat $d/size) != 0; and echo /dev/(basename $d)",
        "    end",
        "    for p in /sys/block/*/*/partition",
        "        set -l d (dirname $p)",
        "        test (cat $d/size) != 0; and echo /dev/(basename $d)",
        "    end",
        "end",
        "",
        "complete -c bmapscan -f",
        "complete -c bmapscan -n %s -a %s" % (fish_quote("not __fish_seen_subcommand_from " + names),
                                              fish_quote(names)),
    ]
    for c in tables["commands"]:
        out.append("complete -c bmapscan -n %s -a %s -d %s" % (
            fish_quote("not __fish_seen_subcommand_from " + names), c["name"], fish_quote(c["summary"])))
    for o in tables["global"]:
        out.append(fish_option(None, o))
    for c in tables["commands"]:
        cond = "__fish_seen_subcommand_from " + c["name"]
        for o in c["options"]:
            out.append(fish_option(cond, o))
        # Operands: files, and block devices where a DEST may stand.
        if c["rest"] == "dest":
            out.append("complete -c bmapscan -n %s -F -a '(__bmapscan_devices)'" % fish_quote(cond))
        elif c["first"] == "file":
            out.append("complete -c bmapscan -n %s -F" % fish_quote(cond))
    return out


def main():
    what = sys.argv[1]
    if what == "man":
        page, tables_path, readme_path = sys.argv[2:5]
        tables = json.load(open(tables_path, encoding="utf-8"))
        readme = open(readme_path, encoding="utf-8").read()
        sections = readme_sections(readme)
        if page == "bmapscan":
            lines = man_main(tables, sections, readme)
        else:
            c = next((c for c in tables["commands"] if "bmapscan-" + c["name"] == page), None)
            if c is None:
                sys.exit("render.py: no command for the page %s" % page)
            lines = man_command(tables, c, sections)
    else:
        tables = json.load(open(sys.argv[2], encoding="utf-8"))
        lines = {"bash": bash, "zsh": zsh, "fish": fish}[what](tables)
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
