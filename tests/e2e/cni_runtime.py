#!/usr/bin/env python3
"""A small CNI runtime, written from the CNI specification (1.1.0,
"Section 4: Plugin Delegation" and "Section 5: Result Types"), not from
cnm's code: it runs a network configuration list's plugins as libcni does.

  cni_runtime.py VERB CONFLIST [CONTAINERID NETNS IFNAME] [--runtime-config JSON]
                 [--valid CID/IFNAME ...]

VERB: add, del, check, status, gc, version. CNI_PATH comes from the
environment. ADD results are cached in /var/lib/cni/results/<name>-<cid>-<ifname>
and given to DEL and CHECK as prevResult. STATUS and GC go only to plugins
whose VERSION lists 1.1.0. Prints the final result (or the failing plugin's
error object) on stdout; exits 1 when a plugin fails.
"""
import json
import os
import subprocess
import sys

CACHE = "/var/lib/cni/results"


def find(plugin_type):
    for d in os.environ.get("CNI_PATH", "").split(":"):
        p = os.path.join(d, plugin_type)
        if d and os.access(p, os.X_OK):
            return p
    sys.exit(f"plugin {plugin_type} not found in CNI_PATH")


def call(plugin_type, command, conf, cid="", netns="", ifname=""):
    env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=cid, CNI_NETNS=netns,
               CNI_IFNAME=ifname, CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=test")
    p = subprocess.run([find(plugin_type)], input=json.dumps(conf).encode(), env=env,
                       capture_output=True, timeout=120)
    out = p.stdout.decode()
    if p.returncode != 0:
        print(out.strip() or json.dumps({"code": 999, "msg": p.stderr.decode()}))
        sys.stderr.write(p.stderr.decode())
        sys.exit(1)
    return json.loads(out) if out.strip() else None


def plugin_conf(netlist, plugin, runtime_config, prev):
    conf = dict(plugin, cniVersion=netlist["cniVersion"], name=netlist["name"])
    caps = plugin.get("capabilities", {})
    rc = {k: v for k, v in runtime_config.items() if caps.get(k)}
    if rc:
        conf["runtimeConfig"] = rc
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def speaks(plugin_type, version, netlist):
    info = call(plugin_type, "VERSION", {"cniVersion": netlist["cniVersion"]})
    return version in info.get("supportedVersions", [])


def main(argv):
    verb, conflist = argv[0], json.load(open(argv[1]))
    rest = argv[2:]
    runtime_config, valid = {}, []
    if "--runtime-config" in rest:
        i = rest.index("--runtime-config")
        runtime_config = json.loads(rest[i + 1])
        rest = rest[:i] + rest[i + 2:]
    if "--valid" in rest:
        i = rest.index("--valid")
        valid = [{"containerID": v.split("/")[0], "ifname": v.split("/")[1]} for v in rest[i + 1:]]
        rest = rest[:i]
    cid, netns, ifname = (rest + ["", "", ""])[:3]
    plugins = conflist["plugins"]
    cache = os.path.join(CACHE, f"{conflist['name']}-{cid}-{ifname}")
    if verb == "add":
        prev = None
        for p in plugins:
            prev = call(p["type"], "ADD", plugin_conf(conflist, p, runtime_config, prev), cid, netns, ifname)
        os.makedirs(CACHE, exist_ok=True)
        with open(cache, "w") as f:
            json.dump({"kind": "cniCacheV1", "containerId": cid, "ifName": ifname,
                       "networkName": conflist["name"], "result": prev}, f)
        print(json.dumps(prev))
    elif verb in ("del", "check"):
        prev = json.load(open(cache))["result"] if os.path.exists(cache) else None
        order = reversed(plugins) if verb == "del" else plugins
        for p in order:
            call(p["type"], verb.upper(), plugin_conf(conflist, p, runtime_config, prev), cid, netns, ifname)
        if verb == "del" and os.path.exists(cache):
            os.remove(cache)
    elif verb in ("status", "gc"):
        for p in plugins:
            if speaks(p["type"], "1.1.0", conflist):
                conf = plugin_conf(conflist, p, {}, None)
                if verb == "gc":
                    conf["cni.dev/valid-attachments"] = valid
                    conf["cni.dev/attachments"] = valid
                call(p["type"], verb.upper(), conf)
    elif verb == "version":
        for p in plugins:
            print(json.dumps(call(p["type"], "VERSION", {"cniVersion": conflist["cniVersion"]})))
    else:
        sys.exit(f"unknown verb {verb}")


if __name__ == "__main__":
    main(sys.argv[1:])
