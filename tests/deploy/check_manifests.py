#!/usr/bin/env python3
"""Checks that duet's deployment files are well formed and agree with each other and with the server.

    python3 tests/deploy/check_manifests.py [REPOSITORY_ROOT]

Parses docker/compose.yaml, docker/k8s/*.yaml, docker/prometheus/prometheus.yml, the Grafana provisioning files
and docker/grafana/dashboards/*.json, and checks what a typo would silently break: Kubernetes objects' required
fields, that the Deployment's probes, Service and HPA point at what exists, that every grace period covers the
drain timeout of config/duet.json, that a Compose service's DUET_UPSTREAM_URL (the `scale` profile's fan-out
front) calls a duet endpoint of a service it waits for, and that the dashboard only queries metrics that
server/src/stats.cpp exports.
Needs only python3 and PyYAML (Debian: python3-yaml); no cluster, engine or network. Exits 1 listing every
problem found, 0 when there is none.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    sys.exit("check_manifests: PyYAML is missing; install the Debian package python3-yaml")


class Report:
    def __init__(self):
        self.errors = []
        self.checks = 0

    def check(self, ok, where, message):
        self.checks += 1
        if not ok and f"{where}: {message}" not in self.errors:
            self.errors.append(f"{where}: {message}")
        return ok


R = Report()


def rel(path):
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def load_yaml(path):
    """Every document of a YAML file (empty ones dropped), or [] after reporting why it could not be read."""
    if not R.check(path.is_file(), rel(path), "missing"):
        return []
    try:
        with path.open(encoding="utf-8") as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        R.check(False, rel(path), f"not valid YAML: {e}")
        return []


def load_json(path):
    if not R.check(path.is_file(), rel(path), "missing"):
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        R.check(False, rel(path), f"not valid JSON: {e}")
        return None


def dig(obj, *keys):
    """obj[k1][k2]... or None where a level is missing or not a mapping/list."""
    for k in keys:
        if isinstance(obj, dict) and k in obj:
            obj = obj[k]
        elif isinstance(obj, list) and isinstance(k, int) and -len(obj) <= k < len(obj):
            obj = obj[k]
        else:
            return None
    return obj


def duration_seconds(value):
    """A Compose/Go duration ("15s", "1m30s", "500ms") or a number of seconds, as float; None if malformed."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    return sum(float(n) * scale[u] for n, u in parts)


def cpu_millicores(value):
    """A Kubernetes CPU quantity ("500m", "2", 1.5) in millicores; None if malformed."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) * 1000
    if isinstance(value, str):
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", value)
        if m:
            return float(m.group(1)) * (1 if m.group(2) else 1000)
    return None


# --- what the server says ---------------------------------------------------------------------------------------


def drain_timeout_ms():
    """server.drain_timeout_ms from config/duet.json, which allows whole-line // comments."""
    path = ROOT / "config" / "duet.json"
    if not R.check(path.is_file(), rel(path), "missing"):
        return 10000
    text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("//"))
    try:
        value = dig(json.loads(text), "server", "drain_timeout_ms")
    except json.JSONDecodeError as e:
        R.check(False, rel(path), f"not valid JSON once // lines are removed: {e}")
        return 10000
    R.check(isinstance(value, int), rel(path), "has no integer server.drain_timeout_ms")
    return value if isinstance(value, int) else 10000


def exported_metrics():
    """The duet_* metric names server/src/stats.cpp writes to /metrics."""
    path = ROOT / "server" / "src" / "stats.cpp"
    if not R.check(path.is_file(), rel(path), "missing"):
        return set()
    names = set(re.findall(r"\bduet_[a-z_]+", path.read_text(encoding="utf-8")))
    R.check(len(names) >= 10, rel(path), f"only {len(names)} duet_* metric names found; did the file move?")
    return names


def server_endpoints():
    """The paths server/src/endpoints.cpp routes ("/io/sleep", ...)."""
    path = ROOT / "server" / "src" / "endpoints.cpp"
    if not R.check(path.is_file(), rel(path), "missing"):
        return set()
    paths = set(re.findall(r'\.path\s*=\s*"(/[^"]*)"', path.read_text(encoding="utf-8")))
    R.check("/io/sleep" in paths, rel(path), f"/io/sleep is not among the paths found, {sorted(paths)}; did it move?")
    return paths


# --- Kubernetes -------------------------------------------------------------------------------------------------


def container_port_numbers(container):
    """{port name or number (as written in a probe/targetPort): containerPort number}."""
    ports = {}
    for p in container.get("ports") or []:
        number = p.get("containerPort") if isinstance(p, dict) else None
        if isinstance(number, int):
            ports[number] = number
            if p.get("name"):
                ports[p["name"]] = number
    return ports


def prestop_seconds(prestop):
    """Seconds a preStop hook waits, when it is a plain sleep; 0 otherwise."""
    if not isinstance(prestop, dict):
        return 0
    if isinstance(dig(prestop, "sleep", "seconds"), int):
        return prestop["sleep"]["seconds"]
    cmd = dig(prestop, "exec", "command") or []
    text = " ".join(str(c) for c in cmd)
    m = re.search(r"\bsleep\s+(\d+(?:\.\d+)?)\s*$", text)
    return float(m.group(1)) if m else 0


def check_deployment(where, d, drain_s):
    spec = d.get("spec") or {}
    template = spec.get("template") or {}
    pod_labels = dig(template, "metadata", "labels") or {}
    match = dig(spec, "selector", "matchLabels") or {}
    R.check(bool(match), where, "spec.selector.matchLabels is empty")
    R.check(all(pod_labels.get(k) == v for k, v in match.items()), where,
            f"spec.selector.matchLabels {match} does not match the pod template's labels {pod_labels}")
    R.check(isinstance(spec.get("replicas"), int) and spec["replicas"] >= 2, where,
            "spec.replicas should be 2 or more (one pod draining must not leave the Service empty)")

    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if not R.check(len(containers) >= 1, where, "the pod template has no containers"):
        return pod_labels, {}
    c = containers[0]
    cw = f"{where} container {c.get('name')!r}"
    R.check(bool(c.get("image")), cw, "has no image")
    R.check(c.get("imagePullPolicy") in ("IfNotPresent", "Never"), cw,
            "imagePullPolicy should be IfNotPresent (the image is a local tag, not in a registry)")
    ports = container_port_numbers(c)
    R.check(8080 in ports, cw, "has no containerPort 8080 (duet-server's server.port)")

    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = dig(c, probe, "httpGet")
        if not R.check(isinstance(get, dict), cw, f"has no {probe}.httpGet"):
            continue
        R.check(get.get("path") == path, cw, f"{probe} probes {get.get('path')!r}, expected {path!r}")
        R.check(get.get("port") in ports, cw,
                f"{probe} port {get.get('port')!r} is not one of the container's ports {sorted(map(str, ports))}")
    R.check(isinstance(dig(c, "readinessProbe", "periodSeconds"), int)
            and dig(c, "readinessProbe", "periodSeconds") <= 5, cw,
            "readinessProbe.periodSeconds should be at most 5, so a draining pod leaves the endpoints quickly")

    for kind in ("requests", "limits"):
        cpu = cpu_millicores(dig(c, "resources", kind, "cpu"))
        R.check(cpu is not None and cpu > 0, cw, f"resources.{kind}.cpu is missing or malformed")
        R.check(dig(c, "resources", kind, "memory") is not None, cw, f"resources.{kind}.memory is missing")
    req, lim = cpu_millicores(dig(c, "resources", "requests", "cpu")), cpu_millicores(dig(c, "resources", "limits", "cpu"))
    if req is not None and lim is not None:
        R.check(req <= lim, cw, f"CPU request {req}m exceeds its limit {lim}m")

    env = {e.get("name"): e.get("value") for e in c.get("env") or [] if isinstance(e, dict)}
    R.check(env.get("DUET_SERVER_BIND") == "0.0.0.0", cw,
            "env DUET_SERVER_BIND should be 0.0.0.0 (a pod is reached on its own address, not loopback)")
    if "DUET_SERVER_DRAIN_TIMEOUT_MS" in env:
        try:
            drain_s = max(drain_s, int(env["DUET_SERVER_DRAIN_TIMEOUT_MS"]) / 1000)
        except (TypeError, ValueError):
            R.check(False, cw, "env DUET_SERVER_DRAIN_TIMEOUT_MS is not an integer string")

    prestop = dig(c, "lifecycle", "preStop")
    R.check(isinstance(prestop, dict) and bool(prestop), cw,
            "has no lifecycle.preStop (needed so endpoints stop routing before SIGTERM closes the listener)")
    grace = pod.get("terminationGracePeriodSeconds")
    if R.check(isinstance(grace, int), where, "spec.template.spec.terminationGracePeriodSeconds is missing"):
        need = prestop_seconds(prestop) + drain_s
        R.check(grace > need, where,
                f"terminationGracePeriodSeconds {grace} must exceed preStop {prestop_seconds(prestop):g} s + "
                f"drain timeout {drain_s:g} s = {need:g} s, or SIGKILL cuts the drain")

    sc = c.get("securityContext") or {}
    psc = pod.get("securityContext") or {}
    R.check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, cw, "runAsNonRoot is not true")
    R.check(sc.get("allowPrivilegeEscalation") is False, cw, "securityContext.allowPrivilegeEscalation is not false")
    R.check(sc.get("readOnlyRootFilesystem") is True, cw, "securityContext.readOnlyRootFilesystem is not true")
    return pod_labels, ports


def check_k8s(drain_s):
    k8s = ROOT / "docker" / "k8s"
    files = sorted(p for p in k8s.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    R.check(bool(files), rel(k8s), "no YAML files")
    objects = []  # (where, file, doc)
    for path in files:
        for i, doc in enumerate(load_yaml(path)):
            where = f"{rel(path)}[{i}]"
            if not R.check(isinstance(doc, dict), where, "is not a mapping"):
                continue
            R.check(bool(doc.get("apiVersion")), where, "has no apiVersion")
            R.check(bool(doc.get("kind")), where, "has no kind")
            if doc.get("kind") != "Kustomization":
                R.check(bool(dig(doc, "metadata", "name")), where, "has no metadata.name")
            name = dig(doc, "metadata", "name")
            objects.append((f"{where} {doc.get('kind')}" + (f" {name}" if name else ""), path, doc))

    def of_kind(kind):
        found = [(w, d) for w, _, d in objects if d.get("kind") == kind]
        R.check(len(found) == 1, rel(k8s), f"expected exactly one {kind}, found {len(found)}")
        return found[0] if found else (None, None)

    dw, dep = of_kind("Deployment")
    pod_labels, ports = check_deployment(dw, dep, drain_s) if dep else ({}, {})
    R.check(dep is None or dep.get("apiVersion") == "apps/v1", dw or rel(k8s), "Deployment apiVersion should be apps/v1")

    sw, svc = of_kind("Service")
    if svc:
        selector = dig(svc, "spec", "selector") or {}
        R.check(bool(selector), sw, "spec.selector is empty")
        R.check(all(pod_labels.get(k) == v for k, v in selector.items()), sw,
                f"spec.selector {selector} does not select the Deployment's pods {pod_labels}")
        svc_ports = dig(svc, "spec", "ports") or []
        R.check(bool(svc_ports), sw, "spec.ports is empty")
        for p in svc_ports:
            target = p.get("targetPort", p.get("port"))
            R.check(target in ports, sw,
                    f"port {p.get('port')} targets {target!r}, which is not a containerPort or port name of the "
                    f"Deployment ({sorted(map(str, ports))})")

    hw, hpa = of_kind("HorizontalPodAutoscaler")
    if hpa:
        spec = hpa.get("spec") or {}
        R.check(hpa.get("apiVersion") == "autoscaling/v2", hw, "apiVersion should be autoscaling/v2")
        ref = spec.get("scaleTargetRef") or {}
        R.check(ref.get("kind") == "Deployment" and dep is not None
                and ref.get("name") == dig(dep, "metadata", "name"), hw,
                f"scaleTargetRef {ref} does not name the Deployment {dig(dep, 'metadata', 'name')!r}")
        cpu = [m for m in spec.get("metrics") or []
               if m.get("type") == "Resource" and dig(m, "resource", "name") == "cpu"
               and dig(m, "resource", "target", "type") == "Utilization"
               and isinstance(dig(m, "resource", "target", "averageUtilization"), int)]
        R.check(bool(cpu), hw, "has no Resource cpu metric with a Utilization target")
        lo, hi = spec.get("minReplicas"), spec.get("maxReplicas")
        R.check(isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi, hw,
                f"minReplicas {lo!r} / maxReplicas {hi!r}: need 1 <= minReplicas <= maxReplicas")
        R.check(isinstance(dig(spec, "behavior", "scaleDown", "stabilizationWindowSeconds"), int), hw,
                "has no behavior.scaleDown.stabilizationWindowSeconds")

    kw, kust = of_kind("Kustomization")
    if kust:
        listed = kust.get("resources") or []
        for name in listed:
            R.check((k8s / name).is_file(), kw, f"lists {name!r}, which does not exist")
        for path in files:
            if path.name not in ("kustomization.yaml", "kustomization.yml"):
                R.check(path.name in listed, kw, f"does not list {path.name}")


# --- Compose, Prometheus, Grafana -------------------------------------------------------------------------------


def environment(service):
    """A Compose service's environment as {name: value}, from either the mapping or the list form."""
    env = service.get("environment") if isinstance(service, dict) else None
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    out = {}
    for item in env or []:
        name, sep, value = str(item).partition("=")
        out[name] = value if sep else None
    return out


def check_upstream_url(where, name, s, services, endpoints):
    """A service's DUET_UPSTREAM_URL, as duet-server parses it (server/src/upstream.cpp: "self" or
    http://HOST[:PORT]/PATH, HOST resolved once at start), must call a duet endpoint of another service of the
    file that is started with it and healthy before it starts."""
    sw = f"{where} service {name}"
    url = environment(s).get("DUET_UPSTREAM_URL")
    if url is None or url == "self":
        return
    m = re.fullmatch(r"http://([A-Za-z0-9._-]+)(?::(\d+))?(/[^?#\s]*)", url)
    if not R.check(m is not None, sw, f"DUET_UPSTREAM_URL {url!r} is not self or http://HOST[:PORT]/PATH"):
        return
    host, port, path = m.group(1), int(m.group(2) or 80), m.group(3)
    R.check(path in endpoints, sw,
            f"DUET_UPSTREAM_URL calls {path}, which is not a duet endpoint (server/src/endpoints.cpp): "
            f"{sorted(endpoints)}")
    target = services.get(host)
    if not R.check(isinstance(target, dict), sw,
                   f"DUET_UPSTREAM_URL names host {host!r}, which is not a service of this file"):
        return
    R.check(host != name, sw, "DUET_UPSTREAM_URL names the service itself: write self")
    if R.check(target.get("image") == s.get("image"), sw,
               f"DUET_UPSTREAM_URL calls {host!r}, which does not run duet's image {s.get('image')!r}"):
        server_port = environment(target).get("DUET_SERVER_PORT") or "8080"
        R.check(str(port) == server_port, sw,
                f"DUET_UPSTREAM_URL calls port {port} of {host!r}, which listens on {server_port}")
    mine, theirs = set(s.get("profiles") or []), set(target.get("profiles") or [])
    R.check(not theirs or (mine and mine <= theirs), sw,
            f"DUET_UPSTREAM_URL calls {host!r} (profiles {sorted(theirs)}), which its own profiles "
            f"{sorted(mine)} do not always start")
    R.check(dig(s, "depends_on", host, "condition") == "service_healthy", sw,
            f"should depend on {host} with condition service_healthy: the upstream's name is resolved once, at "
            f"start, so its containers must be up by then (a name that does not resolve stops duet-server)")


def check_compose(drain_s, endpoints):
    path = ROOT / "docker" / "compose.yaml"
    docs = load_yaml(path)
    if not docs:
        return {}
    where = rel(path)
    services = docs[0].get("services") or {}

    def service(name, profile=None):
        s = services.get(name)
        if not R.check(isinstance(s, dict), where, f"has no service {name!r}"):
            return {}
        sw = f"{where} service {name}"
        if profile is None:
            R.check(not s.get("profiles"), sw, "should be in no profile: it is the default stack")
        else:
            R.check(profile in (s.get("profiles") or []), sw, f"is not in profile {profile!r}")
        return s

    duet = service("duet")
    sw = f"{where} service duet"
    context = dig(duet, "build", "context")
    dockerfile = dig(duet, "build", "dockerfile")
    if R.check(context is not None and dockerfile is not None, sw, "has no build.context and build.dockerfile"):
        resolved = (path.parent / context / dockerfile).resolve()
        R.check(resolved == (ROOT / "docker" / "Dockerfile").resolve(), sw,
                f"builds {resolved}, not docker/Dockerfile")
        R.check(resolved.is_file(), sw, f"its Dockerfile {rel(resolved)} does not exist")
    R.check(duet.get("image") == "duet:local", sw, "image should be duet:local")
    R.check(any(str(p).split(":")[-1].split("/")[0] == "8080" for p in duet.get("ports") or []), sw,
            "does not publish container port 8080")
    R.check(bool(dig(duet, "healthcheck", "test")), sw, "has no healthcheck")
    grace = duration_seconds(duet.get("stop_grace_period"))
    R.check(grace is not None and grace > drain_s, sw,
            f"stop_grace_period {duet.get('stop_grace_period')!r} must exceed the drain timeout ({drain_s:g} s)")

    load = service("load", "load")
    R.check(dig(load, "depends_on", "duet", "condition") == "service_healthy", f"{where} service load",
            "should depend on duet with condition service_healthy")
    R.check(any("http://duet:8080/" in str(a) for a in load.get("command") or []), f"{where} service load",
            "should target http://duet:8080/...")

    replica = service("replica", "scale")
    R.check(not replica.get("ports"), f"{where} service replica",
            "must publish no port (two replicas cannot share one host port)")
    R.check(replica.get("image") == "duet:local", f"{where} service replica", "image should be duet:local")
    R.check(isinstance(dig(replica, "deploy", "replicas"), int) or isinstance(replica.get("scale"), int),
            f"{where} service replica", "sets neither deploy.replicas nor scale")
    # The fan-out front: its /io/call calls the replicas (checked with every DUET_UPSTREAM_URL below).
    front = service("front", "scale")
    fw = f"{where} service front"
    R.check(front.get("image") == "duet:local", fw, "image should be duet:local")
    R.check(any(str(p).split(":")[-1].split("/")[0] == "8080" for p in front.get("ports") or []), fw,
            "does not publish container port 8080")
    R.check(bool(dig(front, "healthcheck", "test")), fw, "has no healthcheck")
    grace = duration_seconds(front.get("stop_grace_period"))
    R.check(grace is not None and grace > drain_s, fw,
            f"stop_grace_period {front.get('stop_grace_period')!r} must exceed the drain timeout ({drain_s:g} s)")
    url = environment(front).get("DUET_UPSTREAM_URL")
    if R.check(bool(url) and url != "self", fw,
               "sets no DUET_UPSTREAM_URL: its /io/call would call itself, not the replicas"):
        R.check(re.match(r"http://replica(:|/)", url) is not None, fw,
                f"DUET_UPSTREAM_URL {url!r} should call the replicas: http://replica:8080/...")
    for name in ("lb", "prometheus", "grafana"):
        service(name, "scale")
    published = {}
    for name, s in services.items():
        if not isinstance(s, dict):
            continue
        check_upstream_url(where, name, s, services, endpoints)
        for p in s.get("ports") or []:
            parts = str(p).split(":")  # [IP:]HOST:CONTAINER[/proto]
            if len(parts) >= 2:
                host_port = (parts[-3] if len(parts) >= 3 else "", parts[-2])
                R.check(host_port not in published, f"{where} service {name}",
                        f"publishes host port {':'.join(host_port)}, as {published.get(host_port)} does")
                published.setdefault(host_port, name)
    for name, s in services.items():
        for v in s.get("volumes") or [] if isinstance(s, dict) else []:
            source = str(v).split(":")[0] if isinstance(v, str) else (v or {}).get("source", "")
            if source.startswith("."):
                R.check((path.parent / source).exists(), f"{where} service {name}",
                        f"mounts {source}, which does not exist next to the compose file")
    return services


def check_nginx():
    path = ROOT / "docker" / "nginx" / "nginx.conf"
    if not R.check(path.is_file(), rel(path), "missing"):
        return
    text = "\n".join(line.split("#")[0] for line in path.read_text(encoding="utf-8").splitlines())
    R.check(text.count("{") == text.count("}"), rel(path), "unbalanced braces")
    for needle, why in (("resolver 127.0.0.11", "a resolver for Docker's embedded DNS, so --scale works"),
                        ("replica:8080", "the replicas as the upstream"),
                        ("keepalive ", "keep-alive connections to the upstream"),
                        ("proxy_http_version 1.1", "HTTP/1.1 to the upstream, which keep-alive needs")):
        R.check(needle in text, rel(path), f"lacks {needle!r}: {why}")


def check_prometheus():
    path = ROOT / "docker" / "prometheus" / "prometheus.yml"
    docs = load_yaml(path)
    if not docs:
        return
    where = rel(path)
    cfg = docs[0]
    jobs = cfg.get("scrape_configs") or []
    R.check(bool(jobs), where, "has no scrape_configs")
    found = False
    for job in jobs:
        for sd in job.get("dns_sd_configs") or []:
            if "replica" in (sd.get("names") or []):
                found = True
                jw = f"{where} job {job.get('job_name')!r}"
                R.check(sd.get("type") == "A", jw, "dns_sd_configs type should be A")
                R.check(sd.get("port") == 8080, jw, "dns_sd_configs port should be 8080")
                interval = duration_seconds(job.get("scrape_interval", dig(cfg, "global", "scrape_interval")))
                R.check(interval is not None and interval <= 5, jw, "should scrape every 5 s")
    R.check(found, where, "no job discovers the replicas with dns_sd_configs names: [replica]")
    targets = [t for job in jobs for sc in job.get("static_configs") or [] for t in sc.get("targets") or []]
    R.check("front:8080" in targets, where, "no job scrapes the fan-out front (static target front:8080)")
    promtool(where, "check", "config", str(path))


def check_grafana(metrics):
    prov = ROOT / "docker" / "grafana" / "provisioning"
    uids = set()
    for path in sorted((prov / "datasources").glob("*.y*ml")):
        for doc in load_yaml(path):
            R.check(doc.get("apiVersion") == 1, rel(path), "apiVersion should be 1")
            for ds in doc.get("datasources") or []:
                R.check(bool(ds.get("uid")), rel(path), f"datasource {ds.get('name')!r} has no fixed uid")
                if ds.get("type") == "prometheus":
                    R.check(ds.get("url") == "http://prometheus:9090", rel(path),
                            f"datasource url {ds.get('url')!r} should be http://prometheus:9090")
                    uids.add(ds.get("uid"))
    R.check(bool(uids), rel(prov / "datasources"), "no Prometheus datasource is provisioned")

    dashboard_paths = []
    for path in sorted((prov / "dashboards").glob("*.y*ml")):
        for doc in load_yaml(path):
            R.check(doc.get("apiVersion") == 1, rel(path), "apiVersion should be 1")
            for p in doc.get("providers") or []:
                R.check(p.get("type") == "file" and bool(dig(p, "options", "path")), rel(path),
                        f"provider {p.get('name')!r} should be type file with options.path")
                dashboard_paths.append(dig(p, "options", "path"))
    R.check(bool(dashboard_paths), rel(prov / "dashboards"), "no dashboard provider is provisioned")

    boards = sorted((ROOT / "docker" / "grafana" / "dashboards").glob("*.json"))
    R.check(bool(boards), "docker/grafana/dashboards", "no dashboard JSON")
    for path in boards:
        board = load_json(path)
        if board is None:
            continue
        check_dashboard(rel(path), board, uids, metrics)
    return dashboard_paths


def panels_of(board):
    for p in board.get("panels") or []:
        yield p
        yield from p.get("panels") or []  # panels inside a collapsed row


def check_dashboard(where, board, uids, metrics):
    R.check(bool(board.get("uid")) and bool(board.get("title")), where, "has no uid or title")
    R.check(isinstance(board.get("schemaVersion"), int) and board["schemaVersion"] >= 36, where,
            "schemaVersion should be 36 or newer")
    ids = [p.get("id") for p in panels_of(board)]
    R.check(len(ids) == len(set(ids)) and None not in ids, where, "panel ids are missing or not unique")

    def check_ds(ds, w):
        if isinstance(ds, dict) and ds.get("type") == "prometheus":
            R.check(ds.get("uid") in uids, w, f"datasource uid {ds.get('uid')!r} is not a provisioned one {sorted(uids)}")

    used = set()
    exprs = []
    for p in panels_of(board):
        if p.get("type") == "row":
            continue
        pw = f"{where} panel {p.get('title')!r}"
        R.check(isinstance(p.get("gridPos"), dict), pw, "has no gridPos")
        check_ds(p.get("datasource"), pw)
        targets = p.get("targets") or []
        R.check(any(t.get("expr") for t in targets), pw, "has no query")
        for t in targets:
            check_ds(t.get("datasource"), pw)
            if t.get("expr"):
                exprs.append((pw, t["expr"]))
    for v in dig(board, "templating", "list") or []:
        check_ds(v.get("datasource"), f"{where} variable {v.get('name')!r}")
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if isinstance(q, str):
            exprs.append((f"{where} variable {v.get('name')!r}", q))

    for w, expr in exprs:
        R.check(expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), w,
                f"unbalanced brackets in {expr!r}")
        for name in set(re.findall(r"(?<![\w\"'$-])duet_[a-z_]+", expr)):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            used.add(name)
            R.check(name in metrics or base in metrics, w,
                    f"queries {name}, which server/src/stats.cpp does not export")
    check_promql(where, exprs)
    for needed in ("duet_http_requests_total", "duet_http_request_duration_seconds_bucket",
                   "duet_event_loop_lag_seconds_bucket", "duet_event_loop_stalls_total",
                   "duet_thread_cpu_seconds_total", "duet_pool_queue_depth", "duet_pool_busy_workers",
                   "duet_pool_jobs_total", "duet_connections_open"):
        R.check(needed in used, where, f"no panel queries {needed}")


def promtool(where, *args):
    """Runs promtool (Debian: prometheus, which the test suite installs); a failure is a finding."""
    tool = shutil.which("promtool")
    if not R.check(tool is not None, where, "promtool is missing (install the Debian package prometheus)"):
        return
    run = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
    R.check(run.returncode == 0, where, f"promtool {args[0]} {args[1]} failed: {(run.stdout + run.stderr).strip()}")


def check_promql(where, exprs):
    """Parses every query with Prometheus's own parser: each becomes a recording rule, Grafana's variables
    replaced by values of the same type."""
    rules = []
    for i, (_, expr) in enumerate(exprs):
        e = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1h")
        e = re.sub(r"\$\{?\w+\}?", ".*", e)
        if e.startswith("label_values("):
            continue  # a Grafana function, not PromQL
        rules.append({"record": f"duet:check_{i}", "expr": e})
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    try:
        promtool(where, "check", "rules", f.name)
    finally:
        pathlib.Path(f.name).unlink()


def main():
    global ROOT
    ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2]).resolve()
    drain_s = drain_timeout_ms() / 1000
    metrics = exported_metrics()
    endpoints = server_endpoints()
    check_k8s(drain_s)
    services = check_compose(drain_s, endpoints)
    check_nginx()
    check_prometheus()
    dashboard_paths = check_grafana(metrics) or []
    grafana = services.get("grafana") if isinstance(services, dict) else None
    if isinstance(grafana, dict):
        targets = [str(v).split(":")[1] for v in grafana.get("volumes") or [] if isinstance(v, str) and ":" in v]
        for p in dashboard_paths:
            R.check(p in targets, "docker/compose.yaml service grafana",
                    f"mounts nothing at {p}, where the dashboard provider looks")

    if R.errors:
        print(f"check_manifests: {len(R.errors)} problem(s) in {R.checks} checks:", file=sys.stderr)
        for e in R.errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    print(f"check_manifests: {R.checks} checks passed")
    return 0


ROOT = pathlib.Path(".")
if __name__ == "__main__":
    sys.exit(main())
