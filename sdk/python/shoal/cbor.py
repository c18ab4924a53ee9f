"""A small CBOR codec (RFC 8949), enough for the values that cross Shoal's op boundary.

``dumps(value) -> bytes`` encodes ``None``, ``bool``, ``int`` (from -2**64 to 2**64 - 1),
``float`` (always as a double), ``bytes``/``bytearray``/``memoryview``, ``str``, ``list``/``tuple``
(arrays), ``dict`` (maps, in insertion order), :class:`Tag` and :class:`Simple`.

``loads(data) -> value`` decodes one data item that must fill ``data`` exactly: integers of every
width, byte and text strings (definite or indefinite length), arrays and maps (definite or
indefinite), ``false``/``true``/``null``/``undefined`` (``undefined`` becomes ``None``), other
simple values as :class:`Simple`, half/single/double floats, bignums (tags 2 and 3) as ``int``
and any other tag as :class:`Tag`. Array map keys become tuples so that they can key a dict.

Malformed input raises :class:`CBORDecodeError` (a ``ValueError``) naming the byte offset and
the problem; a value that cannot be encoded raises :class:`CBOREncodeError` (a ``TypeError`` or
``ValueError`` subclass) naming the path to it.
"""

import struct

__all__ = [
    "dumps",
    "loads",
    "CBORError",
    "CBORDecodeError",
    "CBOREncodeError",
    "Tag",
    "Simple",
    "MAX_DEPTH",
]

#: Deepest nesting of arrays, maps and tags either direction accepts.
MAX_DEPTH = 256

_U64_MAX = (1 << 64) - 1
_BREAK = object()


class CBORError(ValueError):
    """Base of the codec's errors."""


class CBORDecodeError(CBORError):
    """The bytes are not one well-formed CBOR data item (or use a feature this codec lacks)."""

    def __init__(self, message, offset=None):
        self.offset = offset
        if offset is not None:
            message = "%s at byte %d" % (message, offset)
        super().__init__(message)


class CBOREncodeError(CBORError, TypeError):
    """The value (or a part of it, named by the path) has no CBOR encoding here."""


class Tag:
    """A tagged data item other than a bignum: ``Tag(number, value)``."""

    __slots__ = ("tag", "value")

    def __init__(self, tag, value):
        if not isinstance(tag, int) or isinstance(tag, bool) or not 0 <= tag <= _U64_MAX:
            raise ValueError("a CBOR tag number is an integer from 0 to 2**64 - 1")
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and (self.tag, self.value) == (other.tag, other.value)

    def __hash__(self):
        return hash(("cbor.Tag", self.tag))

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


class Simple:
    """A simple value other than false, true, null and undefined: ``Simple(0..19 or 32..255)``."""

    __slots__ = ("value",)

    def __init__(self, value):
        if not isinstance(value, int) or not (0 <= value <= 19 or 32 <= value <= 255):
            raise ValueError("a CBOR simple value here is 0..19 or 32..255")
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Simple) and self.value == other.value

    def __hash__(self):
        return hash(("cbor.Simple", self.value))

    def __repr__(self):
        return "Simple(%d)" % self.value


# ---------------------------------------------------------------------------------------------
# Encoding
#
# Both directions run inside the component's interpreter, where every bytecode costs fuel: the
# common cases (small integers, text, arrays and maps of them) take the shortest paths, and the
# path to a bad value is only worked out once one is found.


class _Unencodable(Exception):
    """Raised at a value that cannot be encoded; containers add their part of the path to it on
    the way out."""

    def __init__(self, problem):
        super().__init__(problem)
        self.problem = problem
        self.parts = []


def _head(out, major, n):
    """Appends the initial byte(s) of a data item of major type ``major`` and argument ``n``."""
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out += n.to_bytes(2, "big")
    elif n < 0x100000000:
        out.append(mt | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(mt | 27)
        out += n.to_bytes(8, "big")


def _encode_int(out, value):
    if value >= 0:
        if value > _U64_MAX:
            raise _Unencodable("integer %d is past CBOR's 64-bit range (2**64 - 1 at most)" % value)
        _head(out, 0, value)
    else:
        n = -1 - value
        if n > _U64_MAX:
            raise _Unencodable("integer %d is past CBOR's 64-bit range (-2**64 at least)" % value)
        _head(out, 1, n)


def _encode_str(out, value):
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _Unencodable("text is not valid Unicode (%s)" % e.reason) from None
    _head(out, 3, len(data))
    out += data


_PACK_DOUBLE = struct.Struct(">d").pack


def _encode(out, value, depth, default):
    t = type(value)
    # Exact types first (bool is a subclass of int, so it must not reach the int branch).
    if t is int:
        if 0 <= value < 24:
            out.append(value)
        else:
            _encode_int(out, value)
    elif t is str:
        _encode_str(out, value)
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise _Unencodable("nested deeper than %d arrays/maps/tags" % MAX_DEPTH)
        _head(out, 4, len(value))
        i = 0
        try:
            for item in value:
                if type(item) is int and 0 <= item < 0x10000:
                    if item < 24:
                        out.append(item)
                    elif item < 0x100:
                        out.append(0x18)
                        out.append(item)
                    else:
                        out.append(0x19)
                        out.append(item >> 8)
                        out.append(item & 0xFF)
                else:
                    _encode(out, item, depth + 1, default)
                i += 1
        except _Unencodable as e:
            e.parts.append("[%d]" % i)
            raise
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise _Unencodable("nested deeper than %d arrays/maps/tags" % MAX_DEPTH)
        _head(out, 5, len(value))
        key = None
        try:
            for key, item in value.items():
                if type(key) is str:
                    _encode_str(out, key)
                else:
                    _encode(out, key, depth + 1, default)
                _encode(out, item, depth + 1, default)
        except _Unencodable as e:
            e.parts.append("[%r]" % (key,))
            raise
    elif value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif t is float:
        out.append(0xFB)
        out += _PACK_DOUBLE(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        _head(out, 2, len(data))
        out += data
    elif isinstance(value, Tag):
        if depth >= MAX_DEPTH:
            raise _Unencodable("nested deeper than %d arrays/maps/tags" % MAX_DEPTH)
        _head(out, 6, value.tag)
        _encode(out, value.value, depth + 1, default)
    elif isinstance(value, Simple):
        if value.value < 24:
            out.append(0xE0 | value.value)
        else:
            out.append(0xF8)
            out.append(value.value)
    # Subclasses of the built-in types.
    elif isinstance(value, int):
        _encode_int(out, int(value))
    elif isinstance(value, float):
        out.append(0xFB)
        out += _PACK_DOUBLE(value)
    elif isinstance(value, str):
        _encode_str(out, str(value))
    elif isinstance(value, (list, tuple)):
        _encode(out, list(value), depth, default)
    elif isinstance(value, dict):
        _encode(out, dict(value), depth, default)
    else:
        replacement = default(value) if default is not None else NotImplemented
        if replacement is NotImplemented or depth >= MAX_DEPTH:
            raise _Unencodable(
                "cannot encode a value of type %s as CBOR (use None, bool, int, float, str, "
                "bytes, list, tuple or dict)" % type(value).__name__
            )
        _encode(out, replacement, depth + 1, default)


def dumps(value, default=None):
    """Encodes ``value`` as one CBOR data item. ``default``, when given, is called with any value
    of another type and returns something encodable in its place (or ``NotImplemented``)."""
    out = bytearray()
    try:
        _encode(out, value, 0, default)
    except _Unencodable as e:
        path = "".join(reversed(e.parts)) or "the value"
        raise CBOREncodeError("%s: %s" % (path, e.problem)) from None
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Decoding
#
# ``_item(data, pos, depth)`` decodes the data item at ``pos`` and returns it with the position
# after it (``_BREAK`` for a break stop code).


_MAJOR_NAMES = (
    "unsigned integer",
    "negative integer",
    "byte string",
    "text string",
    "array",
    "map",
    "tag",
    "simple value/float",
)

_ARG_SIZES = {24: 1, 25: 2, 26: 4, 27: 8}
_UNPACK_HALF = struct.Struct(">e").unpack_from
_UNPACK_SINGLE = struct.Struct(">f").unpack_from
_UNPACK_DOUBLE = struct.Struct(">d").unpack_from


def _truncated(what, need, data, pos):
    return CBORDecodeError(
        "truncated: %s needs %d byte(s), %d left" % (what, need, len(data) - pos), pos
    )


def _item(data, pos, depth):
    at = pos
    if pos >= len(data):
        raise CBORDecodeError("truncated: expected a data item, found the end of input", pos)
    initial = data[pos]
    pos += 1
    if initial < 24:
        return initial, pos
    major = initial >> 5
    info = initial & 0x1F
    if major == 7:
        return _simple_or_float(data, pos, info, at)
    if info < 24:
        n = info
    elif info < 28:
        size = _ARG_SIZES[info]
        end = pos + size
        if end > len(data):
            raise _truncated(
                "the argument of major type %d (%s)" % (major, _MAJOR_NAMES[major]), size, data, pos
            )
        n = int.from_bytes(data[pos:end], "big")
        pos = end
    elif info == 31:
        if major in (0, 1, 6):
            raise CBORDecodeError(
                "indefinite length is not allowed in major type %d (%s)"
                % (major, _MAJOR_NAMES[major]),
                at,
            )
        return _indefinite(data, pos, major, at, depth)
    else:
        raise CBORDecodeError(
            "reserved additional information %d in major type %d (%s)"
            % (info, major, _MAJOR_NAMES[major]),
            at,
        )

    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major == 2 or major == 3:
        end = pos + n
        if end > len(data):
            raise _truncated("a %s of length %d" % (_MAJOR_NAMES[major], n), n, data, pos)
        if major == 2:
            return data[pos:end], end
        try:
            return data[pos:end].decode("utf-8"), end
        except UnicodeDecodeError as e:
            raise CBORDecodeError("text string is not valid UTF-8 (%s)" % e.reason, at) from None
    if depth >= MAX_DEPTH:
        raise CBORDecodeError("nested deeper than %d arrays/maps/tags" % MAX_DEPTH, at)
    length = len(data)
    if major == 4:
        # Each element takes at least one byte: a huge count fails fast, not after allocating.
        if n > length - pos:
            raise CBORDecodeError(
                "truncated: array of %d elements but only %d byte(s) left" % (n, length - pos), at
            )
        out = []
        append = out.append
        inner = depth + 1
        for _ in range(n):
            # Small unsigned integers inline: most arrays that cross are of numbers.
            if pos + 2 < length:
                b = data[pos]
                if b < 24:
                    append(b)
                    pos += 1
                    continue
                if b == 0x18:
                    append(data[pos + 1])
                    pos += 2
                    continue
                if b == 0x19:
                    append((data[pos + 1] << 8) | data[pos + 2])
                    pos += 3
                    continue
            value, pos = _item(data, pos, inner)
            if value is _BREAK:
                raise CBORDecodeError(
                    "unexpected break stop code where an array element belongs", pos - 1
                )
            append(value)
        return out, pos
    if major == 5:
        if n > (length - pos) // 2:
            raise CBORDecodeError(
                "truncated: map of %d pairs but only %d byte(s) left" % (n, length - pos), at
            )
        out = {}
        for _ in range(n):
            pos = _pair(data, pos, depth, out)
        return out, pos
    # major == 6: a tag
    content_at = pos
    content, pos = _item(data, pos, depth + 1)
    if content is _BREAK:
        raise CBORDecodeError("unexpected break stop code where tag content belongs", content_at)
    if n == 2 or n == 3:
        if type(content) is not bytes:
            raise CBORDecodeError("bignum tag %d must hold a byte string" % n, at)
        magnitude = int.from_bytes(content, "big")
        return (magnitude if n == 2 else -1 - magnitude), pos
    return Tag(n, content), pos


def _pair(data, pos, depth, out):
    at = pos
    key, pos = _item(data, pos, depth + 1)
    if key is _BREAK:
        raise CBORDecodeError("unexpected break stop code where a map key belongs", at)
    if type(key) is not str:
        if type(key) is list:
            key = _freeze(key)
        try:
            hash(key)
        except TypeError:
            raise CBORDecodeError(
                "unsupported map key of type %s (maps as keys are not supported)"
                % type(key).__name__,
                at,
            ) from None
    if key in out:
        raise CBORDecodeError("duplicate map key %r" % (key,), at)
    value_at = pos
    value, pos = _item(data, pos, depth + 1)
    if value is _BREAK:
        raise CBORDecodeError("unexpected break stop code where a map value belongs", value_at)
    out[key] = value
    return pos


def _indefinite(data, pos, major, at, depth):
    length = len(data)
    if major == 2 or major == 3:
        chunks = []
        while True:
            if pos >= length:
                raise CBORDecodeError("truncated: indefinite-length string without a break", at)
            initial = data[pos]
            if initial == 0xFF:
                pos += 1
                break
            if initial >> 5 != major or initial & 0x1F == 31:
                raise CBORDecodeError(
                    "a chunk of an indefinite-length %s must be a definite-length %s"
                    % (_MAJOR_NAMES[major], _MAJOR_NAMES[major]),
                    pos,
                )
            chunk, pos = _item(data, pos, depth)
            chunks.append(chunk)
        return (b"".join(chunks) if major == 2 else "".join(chunks)), pos
    if depth >= MAX_DEPTH:
        raise CBORDecodeError("nested deeper than %d arrays/maps/tags" % MAX_DEPTH, at)
    if major == 4:
        out = []
        while True:
            if pos >= length:
                raise CBORDecodeError("truncated: indefinite-length array without a break", at)
            item, pos = _item(data, pos, depth + 1)
            if item is _BREAK:
                return out, pos
            out.append(item)
    # major == 5
    out = {}
    while True:
        if pos >= length:
            raise CBORDecodeError("truncated: indefinite-length map without a break", at)
        if data[pos] == 0xFF:
            return out, pos + 1
        pos = _pair(data, pos, depth, out)


def _simple_or_float(data, pos, info, at):
    if info < 20:
        return Simple(info), pos
    if info == 20:
        return False, pos
    if info == 21:
        return True, pos
    if info == 22 or info == 23:
        return None, pos
    if info == 31:
        return _BREAK, pos
    size = _ARG_SIZES.get(info)
    if size is None:
        raise CBORDecodeError("reserved additional information %d in major type 7" % info, at)
    if pos + size > len(data):
        what = {1: "a simple value", 2: "a half-precision float", 4: "a single-precision float",
                8: "a double-precision float"}[size]
        raise _truncated(what, size, data, pos)
    if size == 8:
        return _UNPACK_DOUBLE(data, pos)[0], pos + 8
    if size == 1:
        value = data[pos]
        if value < 32:
            raise CBORDecodeError(
                "simple value %d must be encoded in one byte (two-byte form is for 32..255)"
                % value,
                at,
            )
        return Simple(value), pos + 1
    if size == 2:
        return _UNPACK_HALF(data, pos)[0], pos + 2
    return _UNPACK_SINGLE(data, pos)[0], pos + 4


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def loads(data):
    """Decodes ``data``, which must hold exactly one CBOR data item."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError("cbor.loads takes bytes, not %s" % type(data).__name__)
    result, pos = _item(data, 0, 0)
    if result is _BREAK:
        raise CBORDecodeError("unexpected break stop code outside an indefinite-length item", 0)
    if pos != len(data):
        raise CBORDecodeError("%d trailing byte(s) after the data item" % (len(data) - pos), pos)
    return result
