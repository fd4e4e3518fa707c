"""Checks of an ARI API declaration (Asterisk's Swagger dialect: 1.1 field names, 1.2 type
extension) and of JSON objects against its models, written after the rules of Asterisk's own
rest-api-templates/swagger_model.py (which generates ARI's C code from such files)."""
import re

PRIMITIVES = {"void", "string", "boolean", "int", "long", "double", "float", "Date", "object", "binary"}
PARAM_TYPES = {"path", "query", "body", "header", "form"}
HTTP_METHODS = {"GET", "PUT", "POST", "DELETE"}


class SwaggerError(AssertionError):
    pass


def _require(obj, fields, where):
    missing = [f for f in fields if f not in obj]
    if missing:
        raise SwaggerError("%s: missing %s" % (where, ", ".join(missing)))


def _allowable(values, where):
    kind = values.get("valueType")
    if kind == "RANGE":
        _require(values, ("min", "max"), where)
    elif kind == "LIST":
        _require(values, ("values",), where)
        if not values["values"]:
            raise SwaggerError("%s: an empty LIST" % where)
    else:
        raise SwaggerError("%s: unknown valueType %r" % (where, kind))


def _type_ok(name, models, where):
    m = re.fullmatch(r"List\[(.+)\]", name)
    inner = m.group(1) if m else name
    if name == "integer" or inner == "integer":
        raise SwaggerError("%s: the type for integer is 'int'" % where)
    if inner not in PRIMITIVES and inner not in models:
        raise SwaggerError("%s: type %r is neither primitive nor a model" % (where, name))


def check_declaration(doc, file_name, known_models=()):
    """Raises SwaggerError on the first rule `doc` (the parsed declaration `file_name`)
    breaks. `known_models`: models of Asterisk's own declarations it may refer to."""
    _require(doc, ("apiVersion", "swaggerVersion", "basePath", "resourcePath", "apis", "models"),
             file_name)
    if doc["swaggerVersion"] not in ("1.1", "1.2"):
        raise SwaggerError("%s: swaggerVersion %r" % (file_name, doc["swaggerVersion"]))
    stem = file_name.rsplit(".", 1)[0]
    if doc["resourcePath"] != "/api-docs/%s.{format}" % stem:
        raise SwaggerError("%s: resourcePath %r" % (file_name, doc["resourcePath"]))
    models = dict(doc["models"])
    for name in known_models:
        models.setdefault(name, {})
    for name, model in doc["models"].items():
        where = "%s model %s" % (file_name, name)
        _require(model, ("id", "description", "properties"), where)
        if model["id"] != name:
            raise SwaggerError("%s: id %r" % (where, model["id"]))
        for prop_name, prop in model["properties"].items():
            _require(prop, ("type",), "%s.%s" % (where, prop_name))
            _type_ok(prop["type"], models, "%s.%s" % (where, prop_name))
            if "allowableValues" in prop:
                _allowable(prop["allowableValues"], "%s.%s" % (where, prop_name))
        for sub in model.get("subTypes", []):
            if sub not in models:
                raise SwaggerError("%s: subtype %s is not a model" % (where, sub))
    paths = set()
    for api in doc["apis"]:
        _require(api, ("path", "operations"), file_name + " api")
        if not api["path"].startswith("/") or api["path"] in paths:
            raise SwaggerError("%s: path %r bad or repeated" % (file_name, api["path"]))
        paths.add(api["path"])
        path_vars = set(re.findall(r"\{(\w+)\}", api["path"]))
        for op in api["operations"]:
            where = "%s %s %s" % (file_name, op.get("httpMethod"), api["path"])
            _require(op, ("httpMethod", "nickname", "responseClass", "summary"), where)
            if op["httpMethod"] not in HTTP_METHODS:
                raise SwaggerError("%s: method" % where)
            _type_ok(op["responseClass"], models, where)
            bodies = 0
            seen_path_vars = set()
            for param in op.get("parameters", []):
                pwhere = "%s parameter %s" % (where, param.get("name"))
                _require(param, ("name", "paramType", "dataType"), pwhere)
                if param["paramType"] not in PARAM_TYPES:
                    raise SwaggerError("%s: paramType %r" % (pwhere, param["paramType"]))
                bodies += param["paramType"] == "body"
                if param["paramType"] == "path":
                    seen_path_vars.add(param["name"])
                _type_ok(param["dataType"], models, pwhere)
                if "allowableValues" in param:
                    _allowable(param["allowableValues"], pwhere)
            if bodies > 1:
                raise SwaggerError("%s: more than one body parameter" % where)
            if seen_path_vars != path_vars:
                raise SwaggerError("%s: path parameters %s, path holds %s"
                                   % (where, sorted(seen_path_vars), sorted(path_vars)))
            for err in op.get("errorResponses", []):
                _require(err, ("code", "reason"), where + " errorResponse")


DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")


def check_object(obj, type_name, models, where="object"):
    """Raises SwaggerError unless `obj` is a valid `type_name` of `models`: every required
    property there, every property documented and of its type, values allowed."""
    m = re.fullmatch(r"List\[(.+)\]", type_name)
    if m:
        if not isinstance(obj, list):
            raise SwaggerError("%s: not a list: %r" % (where, obj))
        for i, item in enumerate(obj):
            check_object(item, m.group(1), models, "%s[%d]" % (where, i))
        return
    if type_name == "string":
        ok = isinstance(obj, str)
    elif type_name in ("int", "long"):
        ok = isinstance(obj, int) and not isinstance(obj, bool)
    elif type_name == "boolean":
        ok = isinstance(obj, bool)
    elif type_name == "Date":
        ok = isinstance(obj, str) and DATE.match(obj) is not None
    elif type_name == "object":
        ok = isinstance(obj, dict)
    else:
        model = models[type_name]
        if not isinstance(obj, dict):
            raise SwaggerError("%s: a %s is an object, not %r" % (where, type_name, obj))
        props = model["properties"]
        for key in obj:
            if key not in props:
                raise SwaggerError("%s: %s has no documented field %r" % (where, type_name, key))
        for key, prop in props.items():
            if key not in obj:
                if prop.get("required"):
                    raise SwaggerError("%s: %s lacks required field %r" % (where, type_name, key))
                continue
            check_object(obj[key], prop["type"], models, "%s.%s" % (where, key))
            values = prop.get("allowableValues", {})
            if values.get("valueType") == "LIST" and obj[key] not in values["values"]:
                raise SwaggerError("%s.%s: %r is not one of %s" % (where, key, obj[key], values["values"]))
        return
    if not ok:
        raise SwaggerError("%s: %r is not a %s" % (where, obj, type_name))
