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


def _path_text(path):
    return "".join(path) or "the value"


def _encode(out, value, path, depth, default):
    # bool before int: bool is a subclass of int.
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if value >= 0:
            if value > _U64_MAX:
                raise CBOREncodeError(
                    "%s: integer %d is past CBOR's 64-bit range (2**64 - 1 at most)"
                    % (_path_text(path), value)
                )
            _head(out, 0, value)
        else:
            n = -1 - value
            if n > _U64_MAX:
                raise CBOREncodeError(
                    "%s: integer %d is past CBOR's 64-bit range (-2**64 at least)"
                    % (_path_text(path), value)
                )
            _head(out, 1, n)
    elif isinstance(value, float):
        out.append(0xFB)
        out += struct.pack(">d", value)
    elif isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise CBOREncodeError(
                "%s: text is not valid Unicode (%s)" % (_path_text(path), e.reason)
            ) from None
        _head(out, 3, len(data))
        out += data
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        _head(out, 2, len(data))
        out += data
    elif isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise CBOREncodeError(
                "%s: nested deeper than %d arrays/maps" % (_path_text(path), MAX_DEPTH)
            )
        _head(out, 4, len(value))
        for i, item in enumerate(value):
            path.append("[%d]" % i)
            _encode(out, item, path, depth + 1, default)
            path.pop()
    elif isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise CBOREncodeError(
                "%s: nested deeper than %d arrays/maps" % (_path_text(path), MAX_DEPTH)
            )
        _head(out, 5, len(value))
        for key, item in value.items():
            path.append("{key %r}" % (key,))
            _encode(out, key, path, depth + 1, default)
            path[-1] = "[%r]" % (key,)
            _encode(out, item, path, depth + 1, default)
            path.pop()
    elif isinstance(value, Tag):
        if depth >= MAX_DEPTH:
            raise CBOREncodeError(
                "%s: nested deeper than %d arrays/maps/tags" % (_path_text(path), MAX_DEPTH)
            )
        _head(out, 6, value.tag)
        _encode(out, value.value, path, depth + 1, default)
    elif isinstance(value, Simple):
        if value.value < 24:
            out.append(0xE0 | value.value)
        else:
            out.append(0xF8)
            out.append(value.value)
    else:
        replacement = default(value) if default is not None else NotImplemented
        if replacement is NotImplemented or depth >= MAX_DEPTH:
            raise CBOREncodeError(
                "%s: cannot encode a value of type %s as CBOR (use None, bool, int, float, str, "
                "bytes, list, tuple or dict)" % (_path_text(path), type(value).__name__)
            )
        _encode(out, replacement, path, depth + 1, default)


def dumps(value, default=None):
    """Encodes ``value`` as one CBOR data item. ``default``, when given, is called with any value
    of another type and returns something encodable in its place (or ``NotImplemented``)."""
    out = bytearray()
    _encode(out, value, [], 0, default)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Decoding


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


class _Decoder:
    __slots__ = ("data", "pos")

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n, what):
        start = self.pos
        end = start + n
        if end > len(self.data):
            raise CBORDecodeError(
                "truncated: %s needs %d byte(s), %d left" % (what, n, len(self.data) - start),
                start,
            )
        self.pos = end
        return self.data[start:end]

    def argument(self, info, at, major):
        """The argument of a head whose additional information is ``info`` (< 28)."""
        if info < 24:
            return info
        size = 1 << (info - 24)
        return int.from_bytes(self.take(size, "the argument of major type %d (%s)" % (major, _MAJOR_NAMES[major])), "big")

    def item(self, depth):
        """Decodes one data item; returns ``_BREAK`` for a break stop code."""
        data = self.data
        at = self.pos
        if at >= len(data):
            raise CBORDecodeError("truncated: expected a data item, found the end of input", at)
        initial = data[at]
        self.pos = at + 1
        major = initial >> 5
        info = initial & 0x1F

        if major == 7:
            return self.simple_or_float(info, at)
        if info in (28, 29, 30):
            raise CBORDecodeError(
                "reserved additional information %d in major type %d (%s)"
                % (info, major, _MAJOR_NAMES[major]),
                at,
            )
        if info == 31:
            if major in (0, 1, 6):
                raise CBORDecodeError(
                    "indefinite length is not allowed in major type %d (%s)"
                    % (major, _MAJOR_NAMES[major]),
                    at,
                )
            return self.indefinite(major, at, depth)

        n = self.argument(info, at, major)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 2:
            return bytes(self.take(n, "a byte string of length %d" % n))
        if major == 3:
            raw = self.take(n, "a text string of length %d" % n)
            try:
                return bytes(raw).decode("utf-8")
            except UnicodeDecodeError as e:
                raise CBORDecodeError("text string is not valid UTF-8 (%s)" % e.reason, at) from None
        if depth >= MAX_DEPTH:
            raise CBORDecodeError("nested deeper than %d arrays/maps/tags" % MAX_DEPTH, at)
        if major == 4:
            # Each element takes at least one byte: a huge count fails fast, not after allocating.
            if n > len(data) - self.pos:
                raise CBORDecodeError(
                    "truncated: array of %d elements but only %d byte(s) left"
                    % (n, len(data) - self.pos),
                    at,
                )
            return [self.value(depth + 1, "array element") for _ in range(n)]
        if major == 5:
            if n > (len(data) - self.pos) // 2:
                raise CBORDecodeError(
                    "truncated: map of %d pairs but only %d byte(s) left"
                    % (n, len(data) - self.pos),
                    at,
                )
            result = {}
            for _ in range(n):
                self.pair(result, depth)
            return result
        # major == 6: a tag
        content = self.value(depth + 1, "tag content")
        if n in (2, 3):
            if not isinstance(content, bytes):
                raise CBORDecodeError("bignum tag %d must hold a byte string" % n, at)
            magnitude = int.from_bytes(content, "big")
            return magnitude if n == 2 else -1 - magnitude
        return Tag(n, content)

    def value(self, depth, what):
        """A data item that must not be a break."""
        at = self.pos
        result = self.item(depth)
        if result is _BREAK:
            raise CBORDecodeError("unexpected break stop code where a %s belongs" % what, at)
        return result

    def pair(self, result, depth):
        at = self.pos
        key = self.value(depth + 1, "map key")
        if isinstance(key, list):
            key = _freeze(key)
        try:
            hash(key)
        except TypeError:
            raise CBORDecodeError(
                "unsupported map key of type %s (maps as keys are not supported)"
                % type(key).__name__,
                at,
            ) from None
        if key in result:
            raise CBORDecodeError("duplicate map key %r" % (key,), at)
        result[key] = self.value(depth + 1, "map value")

    def indefinite(self, major, at, depth):
        if major in (2, 3):
            chunks = []
            while True:
                chunk_at = self.pos
                if chunk_at >= len(self.data):
                    raise CBORDecodeError(
                        "truncated: indefinite-length string without a break", at
                    )
                initial = self.data[chunk_at]
                if initial == 0xFF:
                    self.pos += 1
                    break
                if initial >> 5 != major or initial & 0x1F == 31:
                    raise CBORDecodeError(
                        "a chunk of an indefinite-length %s must be a definite-length %s"
                        % (_MAJOR_NAMES[major], _MAJOR_NAMES[major]),
                        chunk_at,
                    )
                chunks.append(self.item(depth))
            if major == 2:
                return b"".join(chunks)
            return "".join(chunks)
        if depth >= MAX_DEPTH:
            raise CBORDecodeError("nested deeper than %d arrays/maps/tags" % MAX_DEPTH, at)
        if major == 4:
            result = []
            while True:
                item = self.item(depth + 1)
                if item is _BREAK:
                    return result
                result.append(item)
        # major == 5
        result = {}
        while True:
            if self.pos < len(self.data) and self.data[self.pos] == 0xFF:
                self.pos += 1
                return result
            if self.pos >= len(self.data):
                raise CBORDecodeError("truncated: indefinite-length map without a break", at)
            self.pair(result, depth)

    def simple_or_float(self, info, at):
        if info < 20:
            return Simple(info)
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22 or info == 23:
            return None
        if info == 24:
            value = self.take(1, "a simple value")[0]
            if value < 32:
                raise CBORDecodeError(
                    "simple value %d must be encoded in one byte (two-byte form is for 32..255)"
                    % value,
                    at,
                )
            return Simple(value)
        if info == 25:
            return struct.unpack(">e", self.take(2, "a half-precision float"))[0]
        if info == 26:
            return struct.unpack(">f", self.take(4, "a single-precision float"))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8, "a double-precision float"))[0]
        if info == 31:
            return _BREAK
        raise CBORDecodeError("reserved additional information %d in major type 7" % info, at)


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
    decoder = _Decoder(data)
    result = decoder.item(0)
    if result is _BREAK:
        raise CBORDecodeError("unexpected break stop code outside an indefinite-length item", 0)
    if decoder.pos != len(data):
        raise CBORDecodeError(
            "%d trailing byte(s) after the data item" % (len(data) - decoder.pos), decoder.pos
        )
    return result
