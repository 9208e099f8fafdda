#!/usr/bin/env python3
"""Checks every relative link in the repository's Markdown files.

A link [text](target) that is not a URL must name a file or folder inside the
repository, and its #anchor, if any, a heading of that file (GitHub's slugs).
Prints one line per broken link and ends with `links: N checked, N broken`;
exits 1 if any is broken. Run from anywhere: `tools/check_links.py`.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\n") if f and os.path.isfile(os.path.join(ROOT, f))]


def prose_lines(path):
    """(line number, text) outside fenced code blocks, inline code removed."""
    in_fence = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if FENCE.match(line):
                in_fence = not in_fence
                continue
            if not in_fence:
                yield number, re.sub(r"`[^`]*`", "", line)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    seen = {}
    result = set()
    for _, line in prose_lines(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            result.add(base if n == 0 else f"{base}-{n}")
    return result


def check(md, target):
    """An error message for a broken link, or None."""
    path, _, anchor = target.partition("#")
    here = os.path.dirname(os.path.join(ROOT, md))
    resolved = os.path.realpath(os.path.join(here, path)) if path else os.path.join(ROOT, md)
    if os.path.commonpath([resolved, ROOT]) != ROOT:
        return "points outside the repository"
    if not os.path.exists(resolved):
        return "names no file in the repository"
    if anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
        return f"names no heading '#{anchor}' in {os.path.relpath(resolved, ROOT)}"
    return None


def main():
    checked = broken = 0
    for md in markdown_files():
        for number, line in prose_lines(os.path.join(ROOT, md)):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                checked += 1
                error = check(md, target)
                if error:
                    broken += 1
                    print(f"{md}:{number}: link '{target}' {error}")
    print(f"links: {checked} checked, {broken} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
