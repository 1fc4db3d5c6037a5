#!/usr/bin/python3
"""Reads what ceso wrote into a VM's extraConfig with cloud-init's OWN code, and netplan.

Run with Debian's /usr/bin/python3 and PYTHONPATH=<unpacked cloud-init>/usr/lib/python3/dist-packages
(scripts/setup.sh unpacks Debian's cloud-init package into test/.cache/cloud-init/).

stdin:  {"extraConfig": {"guestinfo.metadata": "...", "guestinfo.metadata.encoding": "gzip+base64", ...}}
stdout: one JSON document (see RESULT below). Exit 0 whenever the checks ran, even if they failed
        (the caller asserts); non-zero only when the harness itself is broken (bad input, cloud-init
        not importable).

What it does, all with cloud-init's modules rather than a re-implementation:
1. cloudinit.sources.DataSourceVMware with its environment-variable transport (VMX_GUESTINFO=1,
   VMX_GUESTINFO_METADATA, VMX_GUESTINFO_METADATA_ENCODING, ...): the datasource reads exactly those
   guestinfo keys and decodes them its own way. Temp Paths (cloud_dir, run_dir), Ubuntu distro object.
2. User data: the datasource's UserDataProcessor (cloudinit.user_data) splits it into parts;
   cloud-init's own part handlers (cloud-config merging with merge_how / Merge-Type, shell scripts
   written to scripts/) run on them as in stages.Init._do_handlers. Boothooks are WRITTEN, never
   executed; text/part-handler parts (Python code) are excluded. `#include` URLs are fetched only
   when they point to loopback; any other URL is reported unresolved and never contacted.
   The merged cloud-config is what the cloud-config handler writes (cloud-config.txt); cc_runcmd
   then writes scripts/runcmd from it.
3. Schema: cloudinit.config.schema.validate_cloudconfig_schema(cfg, get_schema(), strict=True) for
   every cloud-config part and for the merged result (errors and deprecations collected). cloud-init
   22.4's schema allows unknown top-level keys; they are listed separately (unknownKeys), from the
   property names of the same schema.
4. Network: the datasource's network_config, parsed by parse_net_config_data(cfg, skip_broken=False)
   (the strict parse every non-netplan renderer and every cloud-init before 22.4 does), rendered by
   cloudinit.net.netplan.Renderer into a temp root (as Ubuntu's cloud-init >= 22.4 does: v2 passes
   through), then `netplan generate --root-dir` (Debian's netplan) on it.
"""

import ipaddress
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import urllib.parse

NETPLAN = shutil.which("netplan") or "/usr/sbin/netplan"
NETPLAN_TIMEOUT_S = 30
INCLUDE_TIMEOUT_S = 5


def fail_harness(message):
    sys.stderr.write("cloudinit_check: %s\n" % message)
    sys.exit(2)


try:
    from cloudinit import distros, handlers, helpers, util
    from cloudinit import version as ci_version
    from cloudinit import cloud as ci_cloud
    from cloudinit import user_data as ci_user_data
    from cloudinit import url_helper
    from cloudinit.config import cc_runcmd
    from cloudinit.config.schema import SchemaValidationError, get_schema, validate_cloudconfig_schema
    from cloudinit.handlers.boot_hook import BootHookPartHandler
    from cloudinit.handlers.cloud_config import CloudConfigPartHandler
    from cloudinit.handlers.shell_script import ShellScriptPartHandler
    from cloudinit.handlers.shell_script_by_frequency import ShellScriptByFreqPartHandler
    from cloudinit.net import network_state as ci_network_state
    from cloudinit.net import netplan as ci_netplan
    from cloudinit.settings import PER_ALWAYS, PER_INSTANCE, PER_ONCE
    from cloudinit.sources import DataSourceVMware
except Exception:  # noqa: BLE001 - the harness cannot run at all
    fail_harness("cannot import cloud-init (PYTHONPATH=%s):\n%s" % (os.environ.get("PYTHONPATH", ""), traceback.format_exc()))


class Result:
    def __init__(self):
        self.errors = []

    def error(self, stage, exc=None, message=None):
        if exc is not None:
            text = "%s: %s: %s" % (stage, type(exc).__name__, exc)
        else:
            text = "%s: %s" % (stage, message)
        self.errors.append(text)
        return text


class WarningCollector(logging.Handler):
    """cloud-init reports most user-data problems as log warnings; keep them."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        try:
            self.messages.append("%s: %s" % (record.name, record.getMessage()))
        except Exception:  # noqa: BLE001
            self.messages.append("%s: %s" % (record.name, record.msg))


def to_json(value):
    """JSON-safe copy (YAML may load dates, bytes, sets)."""
    return json.loads(json.dumps(value, default=lambda o: o.decode("utf-8", "replace") if isinstance(o, bytes) else str(o)))


def text_of(payload):
    if payload is None:
        return None
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    return str(payload)


def debian_package_version(root):
    """The Debian version of the unpacked cloud-init (setup.sh records it), if known."""
    path = os.path.join(root, "DEBIAN_VERSION")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def netplan_version():
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "netplan.io"], capture_output=True, text=True, timeout=10, check=False
        )
        return out.stdout.strip() or None
    except Exception:  # noqa: BLE001
        return None


# --- the guestinfo transport ------------------------------------------------------------------


def envvar_name(key):
    """What DataSourceVMware.get_guestinfo_envvar_key_name gives: vmx.guestinfo.x.y -> VMX_GUESTINFO_X_Y."""
    return ("vmx." + key).upper().replace(".", "_")


def set_guestinfo_environment(extra_config):
    for name in list(os.environ):
        if name.startswith("VMX_GUESTINFO"):
            del os.environ[name]
    os.environ["VMX_GUESTINFO"] = "1"
    used = {}
    for key, value in extra_config.items():
        if not key.startswith("guestinfo."):
            continue
        name = envvar_name(key)
        os.environ[name] = "" if value is None else str(value)
        used[name] = key
    return used


# --- #include: loopback only ------------------------------------------------------------------


def is_loopback_url(url):
    try:
        parsed = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return False
    if parsed.scheme not in ("http", "https"):
        return False
    host = parsed.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install_include_guard(includes):
    """cloud-init fetches #include URLs with read_file_or_url(timeout=5, retries=10). Only loopback
    http(s) is fetched (once, short timeout); anything else raises UrlError the way an unreachable
    URL would, so cloud-init's own error path handles it, and is reported unresolved."""
    real = url_helper.read_file_or_url

    def guarded(url, **kwargs):
        entry = {"url": url, "fetched": False}
        includes.append(entry)
        if not is_loopback_url(url):
            entry["error"] = "not fetched: only loopback http(s) URLs are fetched by the checker"
            raise url_helper.UrlError(cause=entry["error"], url=url)
        kwargs["retries"] = 0
        kwargs["timeout"] = INCLUDE_TIMEOUT_S
        try:
            response = real(url, **kwargs)
        except Exception as exc:
            entry["error"] = "%s: %s" % (type(exc).__name__, exc)
            raise
        entry["fetched"] = bool(response.ok())
        entry["code"] = getattr(response, "code", None)
        return response

    ci_user_data.read_file_or_url = guarded


def no_proxies():
    """A loopback fetch must not go through a proxy somewhere else."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        os.environ.pop(name, None)
    os.environ["no_proxy"] = "*"
    os.environ["NO_PROXY"] = "*"


# --- user data ----------------------------------------------------------------------------------


class RecordingBootHookHandler(BootHookPartHandler):
    """The real boothook handler writes the hook to boothooks/; this one never RUNS it."""

    def __init__(self, paths, datasource, **kwargs):
        super().__init__(paths, datasource, **kwargs)
        self.written = []

    def handle_part(self, data, ctype, filename, payload, frequency):
        if ctype in handlers.CONTENT_SIGNALS:
            return
        self.written.append(self._write_part(payload, filename))


def run_part_handlers(message, paths, ds, cloud):
    """stages.Init._do_handlers with cloud-init's default handlers (boothooks written, not run)."""
    opts = {"paths": paths, "datasource": ds}
    cloudconfig = CloudConfigPartHandler(**opts)
    shellscript = ShellScriptPartHandler(**opts)
    boothook = RecordingBootHookHandler(**opts)
    defaults = [
        cloudconfig,
        shellscript,
        ShellScriptByFreqPartHandler(PER_ALWAYS, **opts),
        ShellScriptByFreqPartHandler(PER_INSTANCE, **opts),
        ShellScriptByFreqPartHandler(PER_ONCE, **opts),
        boothook,
    ]
    try:
        from cloudinit.handlers.jinja_template import JinjaTemplatePartHandler

        defaults.append(JinjaTemplatePartHandler(**opts, sub_handlers=[cloudconfig, shellscript]))
    except Exception:  # noqa: BLE001 - optional in older versions
        pass
    c_handlers = helpers.ContentHandlers()
    for mod in defaults:
        c_handlers.register(mod, overwrite=False)
    frequency = PER_INSTANCE
    for _ctype, mod in c_handlers.items():
        if mod in c_handlers.initialized:
            continue
        handlers.call_begin(mod, cloud, frequency)
        c_handlers.initialized.append(mod)
    try:
        part_data = {
            "handlers": c_handlers,
            "handlerdir": paths.get_ipath("handlers"),
            "data": cloud,
            "frequency": frequency,
            "handlercount": 0,
            # Python part handlers would be imported and executed: never here.
            "excluded": ["text/part-handler"],
        }
        handlers.walk(message, handlers.walker_callback, data=part_data)
    finally:
        for _ctype, mod in c_handlers.items():
            if mod not in c_handlers.initialized:
                continue
            c_handlers.initialized.remove(mod)
            handlers.call_end(mod, cloud, frequency)
    return cloudconfig.cloud_fn, boothook.written


def list_parts(message):
    parts = []
    for part in message.walk():
        if part.get_content_maintype() == "multipart":
            continue
        payload = util.fully_decoded_payload(part)
        parts.append(
            {
                "contentType": part.get_content_type(),
                "filename": part.get_filename(),
                "mergeType": part.get("Merge-Type") or part.get("X-Merge-Type"),
                "content": text_of(payload),
            }
        )
    return parts


# --- schema -------------------------------------------------------------------------------------


def schema_properties(schema):
    """Every top-level key some module of the schema defines (22.4 has no additionalProperties: false)."""
    names = set()
    defs = schema.get("$defs", {})

    def collect(node, depth=0):
        if not isinstance(node, dict) or depth > 8:
            return
        names.update((node.get("properties") or {}).keys())
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            collect(defs.get(ref[len("#/$defs/") :]), depth + 1)
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key) or []:
                collect(sub, depth + 1)

    collect(schema)
    return names


def validate(config, source, schema, known_keys, out):
    if not isinstance(config, dict):
        out["schemaErrors"].append({"source": source, "path": "", "message": "not a mapping: %s" % type(config).__name__})
        return
    try:
        validate_cloudconfig_schema(config, schema=schema, strict=True, log_details=False)
    except SchemaValidationError as exc:
        for path, message in getattr(exc, "schema_errors", ()):
            out["schemaErrors"].append({"source": source, "path": path, "message": message})
        for path, message in getattr(exc, "schema_deprecations", ()):
            out["schemaDeprecations"].append({"source": source, "path": path, "message": message})
    for key in config:
        if key not in known_keys and key not in ("merge_how", "merge_type", "launch-index"):
            out["unknownKeys"].append({"source": source, "key": str(key)})


# --- network ------------------------------------------------------------------------------------


def clean_env():
    """netplan (a Python program too) gets neither cloud-init's PYTHONPATH nor the guestinfo variables."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("VMX_GUESTINFO")}
    env["LC_ALL"] = "C.UTF-8"
    return env


def read_tree(root, skip_prefix):
    files = {}
    for base, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(base, name)
            rel = os.path.relpath(full, root)
            if rel.startswith(skip_prefix):
                continue
            if os.path.islink(full):
                files[rel] = "-> " + os.readlink(full)
                continue
            with open(full, "rb") as f:
                files[rel] = f.read().decode("utf-8", "replace")
    return dict(sorted(files.items()))


def check_network(ds, work, res, out):
    try:
        out["networkSource"] = "metadata" if "network" in (ds.metadata or {}) else "fallback"
        config = ds.network_config
        out["networkConfig"] = to_json(config)
    except Exception as exc:  # noqa: BLE001
        res.error("network.config", exc)
        return
    if not isinstance(config, dict):
        res.error("network.config", message="not a mapping: %r" % (config,))
        return

    # The strict parse (no netplan passthrough): what every non-netplan renderer, and every
    # cloud-init before 22.4 with any renderer, does with a v2 config.
    try:
        state = ci_network_state.parse_net_config_data(config, skip_broken=False)
        out["networkParse"] = {"ok": True, "state": to_json(_interfaces(state))}
    except Exception as exc:  # noqa: BLE001
        out["networkParse"] = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
        res.error("network.parse", exc)

    # What Ubuntu's cloud-init (netplan renderer) writes to /etc/netplan/50-cloud-init.yaml.
    root = os.path.join(work, "netplan-root")
    os.makedirs(root, exist_ok=True)
    try:
        renderer = ci_netplan.Renderer(config={"postcmds": False, "features": []})
        passthrough = ci_network_state.parse_net_config_data(config, skip_broken=False, renderer=renderer)
        renderer.render_network_state(passthrough, target=root)
        netplan_file = os.path.join(root, renderer.netplan_path)
        with open(netplan_file, encoding="utf-8") as f:
            out["netplanYaml"] = f.read()
        # Real netplan refuses world-readable files in newer versions; cloud-init >= 23.x writes 0600.
        os.chmod(netplan_file, 0o600)
    except Exception as exc:  # noqa: BLE001
        res.error("network.render", exc)
        return

    generate = {"ok": False, "exitCode": None, "stderr": "", "files": {}}
    out["netplanGenerate"] = generate
    try:
        proc = subprocess.run(
            [NETPLAN, "generate", "--root-dir", root],
            capture_output=True,
            text=True,
            timeout=NETPLAN_TIMEOUT_S,
            check=False,
            env=clean_env(),
        )
        generate["exitCode"] = proc.returncode
        generate["stderr"] = proc.stderr.replace(root + os.sep, "<root>/").replace(root, "<root>")
        generate["ok"] = proc.returncode == 0
        generate["files"] = read_tree(root, os.path.join("etc", "netplan"))
        if not generate["ok"]:
            res.error("netplan.generate", message="exit %s: %s" % (proc.returncode, generate["stderr"].strip()))
    except Exception as exc:  # noqa: BLE001
        res.error("netplan.generate", exc)


def _interfaces(state):
    """The parsed interfaces (name, mac, subnets, routes) of a NetworkState."""
    result = []
    for iface in state.iter_interfaces():
        result.append(
            {
                "name": iface.get("name"),
                "macAddress": iface.get("mac_address"),
                "subnets": iface.get("subnets"),
            }
        )
    return {"interfaces": result, "routes": list(state.iter_routes()), "dns": to_json(state.dns_nameservers), "search": to_json(state.dns_searchdomains)}


# --- main ---------------------------------------------------------------------------------------


def check(extra_config):
    res = Result()
    collector = WarningCollector()
    logging.getLogger().addHandler(collector)
    logging.getLogger().setLevel(logging.DEBUG if os.environ.get("CLOUDINIT_CHECK_DEBUG") else logging.WARNING)
    if os.environ.get("CLOUDINIT_CHECK_DEBUG"):
        logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))

    import cloudinit

    package_root = os.path.abspath(os.path.join(os.path.dirname(cloudinit.__file__), "..", "..", "..", "..", ".."))
    out = {
        "cloudInitVersion": ci_version.version_string(),
        "cloudInitPackage": debian_package_version(package_root),
        "cloudInitPath": os.path.dirname(cloudinit.__file__),
        "python": sys.version.split()[0],
        "netplanVersion": netplan_version(),
        "envVars": {},
        "datasource": {"ok": False},
        "metadata": None,
        "userdataRaw": None,
        "vendordataRaw": None,
        "parts": [],
        "includes": [],
        "mergedCloudConfig": None,
        "runcmd": None,
        "runcmdScript": None,
        "scripts": {},
        "boothooks": {},
        "schemaErrors": [],
        "schemaDeprecations": [],
        "unknownKeys": [],
        "networkSource": None,
        "networkConfig": None,
        "networkParse": None,
        "netplanYaml": None,
        "netplanGenerate": None,
        "warnings": collector.messages,
        "errors": res.errors,
    }

    work = tempfile.mkdtemp(prefix="ceso-cloudinit-")
    try:
        no_proxies()
        install_include_guard(out["includes"])
        out["envVars"] = set_guestinfo_environment(extra_config)

        paths = helpers.Paths(
            {
                "cloud_dir": os.path.join(work, "var/lib/cloud"),
                "run_dir": os.path.join(work, "run/cloud-init"),
                "templates_dir": os.path.join(work, "etc/cloud/templates"),
            }
        )
        distro = distros.fetch("ubuntu")("ubuntu", {}, paths)
        ds = DataSourceVMware.DataSourceVMware({}, distro, paths)
        paths.datasource = ds

        # 1. the datasource
        try:
            ok = ds.get_data()
        except Exception as exc:  # noqa: BLE001
            res.error("datasource.get_data", exc)
            return out
        info = out["datasource"]
        info["ok"] = bool(ok)
        info["dsname"] = ds.dsname
        info["accessMethod"] = ds.data_access_method
        info["subplatform"] = ds._get_subplatform()
        if not ok:
            res.error("datasource.get_data", message="returned False (no guestinfo metadata, userdata or vendordata)")
            return out
        out["metadata"] = to_json(ds.metadata)
        out["userdataRaw"] = text_of(ds.userdata_raw)
        out["vendordataRaw"] = text_of(ds.vendordata_raw)
        try:
            info["instanceId"] = ds.get_instance_id()
            info["localHostname"] = ds.get_hostname().hostname
            info["localFqdn"] = ds.get_hostname(fqdn=True).hostname
        except Exception as exc:  # noqa: BLE001
            res.error("datasource.identity", exc)
            return out

        # The per-instance directory cloud-init links as /var/lib/cloud/instance.
        iid_dir = os.path.join(paths.cloud_dir, "instances", str(info["instanceId"]).replace(os.sep, "_"))
        os.makedirs(iid_dir, exist_ok=True)
        os.symlink(iid_dir, paths.instance_link)
        cloud = ci_cloud.Cloud(ds, paths, {}, distro, helpers.Runners(paths))

        # 2. user data: parts and merged cloud-config
        try:
            message = ds.get_userdata(True)
            out["parts"] = list_parts(message)
            cloud_fn, boothooks = run_part_handlers(message, paths, ds, cloud)
            merged = util.read_conf(cloud_fn) if cloud_fn and os.path.exists(cloud_fn) else {}
            out["mergedCloudConfig"] = to_json(merged)
            out["runcmd"] = to_json(merged.get("runcmd")) if isinstance(merged, dict) else None
            for path in boothooks:
                with open(path, encoding="utf-8", errors="replace") as f:
                    out["boothooks"][os.path.basename(path)] = f.read()
        except Exception as exc:  # noqa: BLE001
            res.error("userdata", exc)
            merged = None
        if isinstance(merged, dict):
            # cc_set_hostname's view: hostname and fqdn from the merged cloud-config, else metadata.
            try:
                hostname = util.get_hostname_fqdn(merged, cloud)
                info["hostname"] = hostname.hostname
                info["fqdn"] = hostname.fqdn
            except Exception as exc:  # noqa: BLE001
                res.error("userdata.hostname", exc)
            # cc_runcmd writes scripts/runcmd, run later by scripts-user in name order with the others.
            if "runcmd" in merged:
                try:
                    cc_runcmd.handle("runcmd", merged, cloud, logging.getLogger("cloudinit.config.cc_runcmd"), [])
                    with open(os.path.join(paths.get_ipath_cur("scripts"), "runcmd"), encoding="utf-8") as f:
                        out["runcmdScript"] = f.read()
                except Exception as exc:  # noqa: BLE001
                    res.error("userdata.runcmd", exc)
        scripts_dir = paths.get_ipath_cur("scripts")
        if os.path.isdir(scripts_dir):
            out["scripts"] = read_tree(scripts_dir, "\0")

        # 3. schema
        try:
            schema = get_schema()
            known = schema_properties(schema)
            for index, part in enumerate(out["parts"]):
                if part["contentType"] != "text/cloud-config":
                    continue
                source = part["filename"] or "part-%03d" % index
                try:
                    doc = util.load_yaml(part["content"] or "", default=None)
                except Exception as exc:  # noqa: BLE001
                    out["schemaErrors"].append({"source": source, "path": "", "message": "YAML: %s" % exc})
                    continue
                if doc is None:
                    out["schemaErrors"].append({"source": source, "path": "", "message": "not a YAML mapping"})
                    continue
                validate(doc, source, schema, known, out)
            if out["mergedCloudConfig"] is not None:
                validate(out["mergedCloudConfig"], "merged", schema, known, out)
        except Exception as exc:  # noqa: BLE001
            res.error("schema", exc)

        # 4. network
        check_network(ds, work, res, out)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    try:
        request = json.load(sys.stdin)
    except ValueError as exc:
        fail_harness("stdin is not JSON: %s" % exc)
    extra = request.get("extraConfig") if isinstance(request, dict) else None
    if not isinstance(extra, dict):
        fail_harness('stdin must be {"extraConfig": {key: value, ...}}')
    try:
        out = check(extra)
    except Exception:  # noqa: BLE001 - a bug in this harness, not a finding
        fail_harness("harness error:\n%s" % traceback.format_exc())
    sys.stdout.write(json.dumps(to_json(out), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
