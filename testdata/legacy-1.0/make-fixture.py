#!/usr/bin/env python3
"""Writes testdata/legacy-1.0/data the way the release with app-api 1.0.0
(commit 12117bf) writes a site's data directory: its host and apps make the
users, posts, images and uploads, through the command line and HTTP.

Usage, from a checkout of that commit with `cargo build -p host -p frontend
-p admin` done:  python3 make-fixture.py OLD_CHECKOUT OUTPUT_DIR
"""
import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

old, output = sys.argv[1], sys.argv[2]
binary = os.path.join(old, "target/debug/host")
site = tempfile.mkdtemp()
table = os.path.join(site, "plugins.json")
with open(table, "w") as file:
    file.write(
        '{"mounts": ['
        f'{{"name": "frontend", "prefix": "/", "library": "{old}/target/debug/libfrontend.so"}},'
        f'{{"name": "admin", "prefix": "/admin", "library": "{old}/target/debug/libadmin.so",'
        ' "max_body_bytes": 16777216}]}'
    )

def cmd(*args, stdin=""):
    done = subprocess.run([binary, "cmd", "--config", table, *args], input=stdin,
                          capture_output=True, text=True, cwd=site)
    assert done.returncode == 0, done.stderr
    return done.stdout

cmd("admin", "create-user", "alice", stdin="correct horse battery\n")
cmd("admin", "create-user", "bob", stdin="another long password\n")
posts = {
    "first.md": "# Hello, World!\n\nThe first post, with **markdown**.\n",
    "second.md": "# Ünïcödé & <angle> brackets\n\nA second post.\n\n- one\n- two\n",
    "draft.md": "# Not yet\n\nA draft nobody reads.\n",
}
for name, text in posts.items():
    with open(os.path.join(site, name), "w") as file:
        file.write(text)
cmd("admin", "import-post", "first.md", "second.md")
cmd("admin", "import-post", "--draft", "draft.md")

server = subprocess.Popen([binary, "serve", "--config", table, "--listen", "127.0.0.1:0"],
                          cwd=site, stderr=subprocess.PIPE, text=True)
for line in server.stderr:
    found = re.search(r"listening on (http://\S+)", line)
    if found:
        base = found.group(1)
        break
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

def token(path):
    page = opener.open(base + path).read().decode()
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

def post(path, fields):
    body = urllib.parse.urlencode(fields).encode()
    return opener.open(urllib.request.Request(base + path, data=body))

def upload(path, fields, file_name, data):
    boundary = "fixtureboundary"
    body = b""
    for key, value in fields.items():
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                 f"{value}\r\n").encode()
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
             f'filename="{file_name}"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(base + path, data=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    return opener.open(request)

try:
    post("/admin/login", {"username": "mallory", "password": "wrong guess",
                          "csrf_token": token("/admin/login")})
except urllib.error.HTTPError:
    pass
post("/admin/login", {"username": "alice", "password": "correct horse battery",
                      "csrf_token": token("/admin/login")})
png = open(os.path.join(old, "testdata/images/sunrise.png"), "rb").read()
gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
upload("/admin/images", {"csrf_token": token("/admin/images"), "attach_to": "1"}, "sunrise.png", png)
upload("/admin/images", {"csrf_token": token("/admin/images"), "attach_to": "1"}, "dot.gif", gif)
upload("/admin/images", {"csrf_token": token("/admin/images")}, "unattached.gif", gif)
server.send_signal(signal.SIGTERM)
server.wait()

shutil.rmtree(output, ignore_errors=True)
shutil.copytree(os.path.join(site, "data"), output)
print("wrote", output, sorted(os.listdir(output)), sorted(os.listdir(os.path.join(output, "uploads"))))
