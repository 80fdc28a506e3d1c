"""Area requests built from inventory inputs. Pure Python; no Ansible imports."""


class RequestError(ValueError):
    """An inventory input that cannot be audited; the message says which and why."""


def env_request(files, project_dir=None, max_bytes=1048576):
    """The env area's request, or None when no env file is configured."""
    if not files:
        return None
    names = set()
    normalised = []
    for index, item in enumerate(files):
        if not isinstance(item, dict) or not item.get("name") or not item.get("path"):
            raise RequestError("drift_env_files item %d needs a name and a path" % (index + 1))
        if item["name"] in names:
            raise RequestError("drift_env_files names must be unique: %s appears twice" % item["name"])
        names.add(item["name"])
        normalised.append({"name": str(item["name"]), "path": str(item["path"]), "template": item.get("template")})
    return {"project_dir": project_dir or None, "files": normalised, "max_bytes": int(max_bytes)}


def configured_areas(requests):
    """Only the areas that have a request (an area with no input is not configured)."""
    return {area: request for area, request in (requests or {}).items() if request is not None}
