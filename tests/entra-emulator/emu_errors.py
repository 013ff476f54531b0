# emu_errors.py - the Entra error reply the emulator's modules raise (tests
# only). emulator.py turns an EntraError into Entra's JSON error shape
# (error, error_description "AADSTSnnnn: ...", error_codes, trace and
# correlation ids, timestamp, error_uri). Never carries a secret.


class EntraError(Exception):
    """An error reply in Entra's JSON shape."""

    def __init__(self, status, error, code, text, suberror=None, headers=None):
        super().__init__(error)
        self.status, self.error, self.code, self.text = status, error, code, text
        self.suberror, self.headers = suberror, headers or {}


def missing(param):
    return EntraError(400, "invalid_request", 900144,
                      "The request body must contain the following parameter: '%s'." % param)


class ControlError(Exception):
    """A refused control call: 4xx {"ok": false, "error": msg}."""

    def __init__(self, msg, status=400):
        super().__init__(msg)
        self.status = status


def c_str(body, key, required=True):
    v = body.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v:
        raise ControlError("'%s' must be a non-empty string" % key)
    return v
