"""Runs a Tiltfile without Tilt and prints, as JSON, every Tilt function it called.

Usage: python3 tilt/tiltfile_calls.py [Tiltfile] [-- --option=value ...]
(the options after `--` are those `tilt up -- ...` passes to config.parse())

What this checks: the file parses; it stays within the Starlark subset of Python's syntax
(no classes, imports, try, while, f-strings, sets, `is`, chained comparisons, ...); it
names only Tilt built-ins listed below and Starlark's own built-ins; and each call binds to
the parameter names of Tilt's Tiltfile API reference (docs.tilt.dev/api). What it does not
check: Starlark semantics that Python does not share, argument types, or anything Tilt
decides at run time (images, clusters). The caller checks the recorded arguments.
"""

import ast
import inspect
import json
import sys

# Signatures from Tilt's API reference, parameter names and defaults as documented there.
TILT_API = '''
def allow_k8s_contexts(contexts): pass
def analytics_settings(enable): pass
def blob(contents): pass
def ci_settings(k8s_grace_period='', timeout='30m', readiness_timeout='5m'): pass
def custom_build(ref, command, deps, tag='', disable_push=False, skips_local_docker=False,
                 live_update=[], match_in_env_vars=False, ignore=[], entrypoint=[],
                 command_bat_val='', outputs_image_ref_to='', command_bat='', image_deps=[],
                 env={}, dir=''): pass
def decode_json(json): pass
def decode_yaml(yaml): pass
def decode_yaml_stream(yaml): pass
def default_registry(host, host_from_cluster=None, single_name=''): pass
def docker_build(ref, context, build_args={}, dockerfile='Dockerfile', dockerfile_contents='',
                 live_update=[], match_in_env_vars=False, ignore=[], only=[], entrypoint=[],
                 target='', ssh='', network='', secret='', extra_tag='', container_args=None,
                 cache_from=[], pull=False, platform='', extra_hosts=[]): pass
def docker_prune_settings(disable=False, max_age_mins=360, num_builds=0, interval_hrs=1,
                          keep_recent=2): pass
def enable_feature(feature_name): pass
def encode_json(obj): pass
def encode_yaml(obj): pass
def encode_yaml_stream(objs): pass
def exec_action(command): pass
def fail(msg): pass
def fall_back_on(files): pass
def filter_yaml(yaml, labels=None, name=None, namespace=None, kind=None, api_version=None): pass
def helm(pathToChartDir, name='', namespace='', values=[], set=[], kube_version='',
         skip_crds=False): pass
def http_get_action(port, host='localhost', scheme='http', path=''): pass
def initial_sync(): pass
def k8s_context(): pass
def k8s_custom_deploy(name, apply_cmd, delete_cmd, deps, image_selector='', live_update=[],
                      apply_dir='', apply_env={}, apply_cmd_bat='', delete_dir='',
                      delete_env={}, delete_cmd_bat='', container_selector='',
                      image_deps=[]): pass
def k8s_kind(kind, api_version=None, *, image_json_path=[], image_object_json_path=None,
             pod_readiness=''): pass
def k8s_namespace(): pass
def k8s_resource(workload='', new_name='', port_forwards=[], extra_pod_selectors=[],
                 trigger_mode=None, resource_deps=[], objects=[], auto_init=True,
                 pod_readiness='', links=[], labels=[], discovery_strategy=''): pass
def k8s_yaml(yaml, allow_duplicates=False): pass
def kustomize(pathToDir, kustomize_bin=None, flags=[]): pass
def link(url, name=None): pass
def listdir(directory, recursive=False): pass
def local(command, quiet=False, command_bat='', echo_off=False, env={}, dir='', stdin=None): pass
def local_resource(name, cmd='', deps=None, trigger_mode=None, resource_deps=[], ignore=[],
                   auto_init=True, serve_cmd='', cmd_bat='', serve_cmd_bat='',
                   allow_parallel=False, links=[], labels=[], env={}, serve_env={},
                   readiness_probe=None, dir='', serve_dir=''): pass
def port_forward(local_port, container_port=None, name=None, link_path=None, host=None): pass
def probe(initial_delay_secs=0, timeout_secs=1, period_secs=10, success_threshold=1,
          failure_threshold=3, exec=None, http_get=None, tcp_socket=None): pass
def read_file(file_path, default=None): pass
def read_json(path, default=None): pass
def read_yaml(path, default=None): pass
def read_yaml_stream(path, default=None): pass
def restart_container(): pass
def run(cmd, trigger=[], echo_off=False): pass
def secret_settings(disable_scrub=False): pass
def set_team(team_id): pass
def sync(local_path, remote_path): pass
def tcp_socket_action(port, host='localhost'): pass
def trigger_mode(trigger_mode): pass
def update_settings(max_parallel_updates=3, k8s_upsert_timeout_secs=30,
                    suppress_unused_image_warnings=None, k8s_server_side_apply='auto'): pass
def version_settings(check_updates=True, constraint=''): pass
def warn(msg): pass
def watch_file(file_path): pass
def watch_settings(ignore): pass
def workload_to_resource_function(fn): pass
'''

# Tilt's `config` and `os` modules (the parts of them listed in its API reference).
TILT_MODULES = {
    "config": '''
def define_string(name, args=False, usage=''): pass
def define_string_list(name, args=False, usage=''): pass
def define_bool(name, args=False, usage=''): pass
def define_object(name, args=False, usage=''): pass
def parse(): pass
def set_enabled_resources(resources): pass
def clear_enabled_resources(): pass
''',
    "os": '''
def getenv(key, default=None): pass
def putenv(key, value): pass
def getcwd(): pass
''',
    "os.path": '''
def exists(path): pass
def join(path, *paths): pass
def basename(path): pass
def dirname(path): pass
def abspath(path): pass
''',
}

# Python built-ins that Starlark also has; nothing else (open, __import__, ...) is reachable.
STARLARK_BUILTINS = [
    "abs", "all", "any", "bool", "dict", "dir", "enumerate", "getattr", "hasattr", "int",
    "len", "list", "max", "min", "print", "range", "repr", "reversed", "sorted", "str",
    "tuple", "type", "zip", "True", "False", "None",
]

NOT_STARLARK = {
    ast.ClassDef: "class", ast.Import: "import", ast.ImportFrom: "import",
    ast.Try: "try", ast.Raise: "raise", ast.With: "with", ast.While: "while",
    ast.Global: "global", ast.Nonlocal: "nonlocal", ast.Yield: "yield",
    ast.YieldFrom: "yield", ast.Await: "await", ast.AsyncFunctionDef: "async",
    ast.JoinedStr: "f-string", ast.Set: "set literal", ast.SetComp: "set comprehension",
    ast.GeneratorExp: "generator expression", ast.NamedExpr: ":=", ast.Starred: "starred",
    ast.Delete: "del", ast.Assert: "assert",
}


class TiltCall(dict):
    """The record of one call; built-ins that return objects return their call record."""


class Module:
    """A Tilt module (config, os): its functions as attributes."""


def starlark_problems(tree):
    problems = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        kind = NOT_STARLARK.get(type(node))
        if kind:
            problems.append(f"{where}: {kind} is not Starlark")
        if isinstance(node, ast.Compare):
            if len(node.ops) > 1:
                problems.append(f"{where}: chained comparisons are not Starlark")
            if any(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
                problems.append(f"{where}: `is` is not Starlark")
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Pow, ast.MatMult)):
            problems.append(f"{where}: ** and @ are not Starlark")
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            problems.append(f"{where}: decorators are not Starlark")
    return problems


def main(path, options):
    with open(path) as file:
        source = file.read()
    tree = ast.parse(source, filename=path)
    problems = starlark_problems(tree)
    if problems:
        sys.exit("\n".join(f"{path}: {p}" for p in problems))

    api = {}
    exec(compile(TILT_API, "tilt-api", "exec"), {}, api)
    calls = []

    def stub(name, signature):
        def call(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{name}(): {error}") from None
            record = TiltCall(function=name, arguments=dict(bound.arguments))
            calls.append(record)
            if name == "fail":
                raise RuntimeError(f"fail(): {args[0] if args else kwargs.get('msg')}")
            if name == "k8s_namespace":
                return "default"
            if name == "k8s_context":
                return "kind-sluice"
            if name == "local" and isinstance(bound.arguments["command"], str):
                return "10.1.2.3\n"
            return record
        return call

    scope = {name: stub(name, inspect.signature(fn)) for name, fn in api.items()}
    # config.parse() gives the defined options that were passed, as Tilt does; others fail.
    defined = {}
    for module_name, module_api in TILT_MODULES.items():
        functions = {}
        exec(compile(module_api, module_name, "exec"), {}, functions)
        module = Module()
        for name, fn in functions.items():
            setattr(module, name, stub(f"{module_name}.{name}", inspect.signature(fn)))
        if module_name == "os.path":
            scope["os"].path = module
        else:
            scope[module_name] = module
    for kind in ["string", "string_list", "bool", "object"]:
        define = getattr(scope["config"], f"define_{kind}")
        def record(name, *args, _define=define, _kind=kind, **kwargs):
            defined[name] = _kind
            return _define(name, *args, **kwargs)
        setattr(scope["config"], f"define_{kind}", record)
    def parse():
        scope["config"].__dict__["_parse"]()
        parsed = {}
        for option in options:
            name, _, value = option.removeprefix("--").partition("=")
            if name not in defined:
                raise RuntimeError(f"config.parse(): unknown option --{name}")
            parsed[name] = value
        return parsed
    scope["config"]._parse = scope["config"].parse
    scope["config"].parse = parse
    # What the Tiltfile reads from its environment: nothing set, no file there.
    scope["os"].getenv = lambda key, default=None: default
    scope["os"].path.exists = lambda path: False
    scope["TRIGGER_MODE_AUTO"] = "TRIGGER_MODE_AUTO"
    scope["TRIGGER_MODE_MANUAL"] = "TRIGGER_MODE_MANUAL"
    builtins = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)
    scope["__builtins__"] = {name: builtins[name] for name in STARLARK_BUILTINS}
    try:
        exec(compile(tree, path, "exec"), scope)
    except (NameError, TypeError, RuntimeError) as error:
        sys.exit(f"{path}: {error}")
    json.dump(calls, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    args = sys.argv[1:]
    options = args[args.index("--") + 1:] if "--" in args else []
    files = args[:args.index("--")] if "--" in args else args
    main(files[0] if files else "Tiltfile", options)
