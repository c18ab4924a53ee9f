import math
import struct
import unittest

import _path  # noqa: F401

from shoal import cbor
from shoal.cbor import CBORDecodeError, CBOREncodeError, Simple, Tag, dumps, loads


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


class RoundTrip(unittest.TestCase):
    def test_values_round_trip(self):
        values = [
            0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63, 2**64 - 1,
            -1, -24, -25, -256, -257, -2**63, -2**64,
            0.0, -0.0, 1.5, -2.25, 1e300, float("inf"), float("-inf"),
            "", "a", "ü水🙂", "x" * 1000,
            b"", b"\x00\xff", bytes(range(256)),
            [], [1, [2, [3]]], list(range(30)),
            {}, {"a": 1, "b": [None, True, False]}, {1: "one", -1: "minus"},
            None, True, False,
            Tag(1, 1363896240), Tag(32, "http://x"), Simple(16), Simple(255),
        ]
        for v in values:
            with self.subTest(v=v):
                back = loads(dumps(v))
                self.assertEqual(back, v)
                self.assertIs(type(back), type(v))

    def test_arrays_of_integers_at_the_head_boundaries(self):
        boundaries = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -1, -24, -25, True, False]
        self.assertEqual(loads(dumps(boundaries)), boundaries)
        self.assertEqual(dumps([23, 24, 255, 256, 65535]).hex(), "85171818" + "18ff" + "190100" + "19ffff")
        self.assertEqual(dumps([True, 1, 1.0]).hex(), "83f501fb3ff0000000000000")
        self.assertEqual(loads(dumps(list(range(70000)))), list(range(70000)))
        for b in (True, False):
            self.assertIs(loads(dumps([b]))[0], b)

    def test_nan_round_trips(self):
        self.assertTrue(math.isnan(loads(dumps(float("nan")))))

    def test_tuples_encode_as_arrays(self):
        self.assertEqual(loads(dumps((1, (2, 3)))), [1, [2, 3]])

    def test_rfc_8949_appendix_a_encodings(self):
        cases = [
            (0, "00"), (10, "0a"), (23, "17"), (24, "1818"), (100, "1864"), (1000, "1903e8"),
            (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
            (18446744073709551615, "1bffffffffffffffff"), (-1, "20"), (-10, "29"),
            (-100, "3863"), (-1000, "3903e7"), (-18446744073709551616, "3bffffffffffffffff"),
            (False, "f4"), (True, "f5"), (None, "f6"), (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"),
            ("", "60"), ("a", "6161"), ("IETF", "6449455446"), ('"\\', "62225c"),
            ("\u00fc", "62c3bc"), ("\u6c34", "63e6b0b4"), ("\U00010151", "64f0908591"),
            ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
            ({}, "a0"), ({1: 2, 3: 4}, "a201020304"), ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
            (1.1, "fb3ff199999999999a"), (Simple(16), "f0"), (Simple(255), "f8ff"),
            (Tag(1, 1363896240), "c11a514b67b0"),
        ]
        for value, encoded in cases:
            with self.subTest(value=value):
                self.assertEqual(dumps(value).hex(), encoded)
                self.assertEqual(loads(h(encoded)), value)

    def test_floats_are_encoded_as_doubles(self):
        self.assertEqual(dumps(0.5), b"\xfb" + struct.pack(">d", 0.5))

    def test_decodes_half_single_and_double(self):
        self.assertEqual(loads(h("f90000")), 0.0)
        self.assertEqual(loads(h("f93c00")), 1.0)
        self.assertEqual(loads(h("f97bff")), 65504.0)
        self.assertEqual(loads(h("f90001")), 5.960464477539063e-08)
        self.assertEqual(loads(h("f9c400")), -4.0)
        self.assertEqual(loads(h("f97c00")), float("inf"))
        self.assertTrue(math.isnan(loads(h("f97e00"))))
        self.assertEqual(loads(h("fa47c35000")), 100000.0)
        self.assertEqual(loads(h("fa7f7fffff")), 3.4028234663852886e38)
        self.assertEqual(loads(h("fb7e37e43c8800759c")), 1e300)

    def test_decodes_indefinite_lengths(self):
        self.assertEqual(loads(h("5f 42 0102 43 030405 ff")), b"\x01\x02\x03\x04\x05")
        self.assertEqual(loads(h("7f 657374726561 646d696e67 ff")), "streaming")
        self.assertEqual(loads(h("9f ff")), [])
        self.assertEqual(loads(h("9f 01 820203 9f0405ff ff")), [1, [2, 3], [4, 5]])
        self.assertEqual(loads(h("83 01 9f0203ff 820405")), [1, [2, 3], [4, 5]])
        self.assertEqual(loads(h("bf 6161 01 6162 9f0203ff ff")), {"a": 1, "b": [2, 3]})
        self.assertEqual(loads(h("bf 6346756e f5 63416d74 21 ff")), {"Fun": True, "Amt": -2})

    def test_decodes_bignums_undefined_and_array_keys(self):
        self.assertEqual(loads(h("c249010000000000000000")), 2**64)
        self.assertEqual(loads(h("c349010000000000000000")), -1 - 2**64)
        self.assertIsNone(loads(h("f7")))
        self.assertEqual(loads(h("a1 820102 f5")), {(1, 2): True})

    def test_accepts_bytearray_and_memoryview(self):
        self.assertEqual(loads(bytearray(h("820102"))), [1, 2])
        self.assertEqual(loads(memoryview(h("820102"))), [1, 2])

    def test_deep_nesting_up_to_the_limit(self):
        value = []
        for _ in range(cbor.MAX_DEPTH - 1):
            value = [value]
        self.assertEqual(loads(dumps(value)), value)


class Malformed(unittest.TestCase):
    def assert_malformed(self, hex_text, fragment):
        with self.assertRaises(CBORDecodeError) as caught:
            loads(h(hex_text))
        self.assertIn(fragment, str(caught.exception))
        self.assertIsInstance(caught.exception, ValueError)
        return caught.exception

    def test_empty_input(self):
        self.assert_malformed("", "truncated")

    def test_truncated_heads_and_payloads(self):
        self.assert_malformed("18", "truncated")
        self.assert_malformed("19 01", "truncated")
        self.assert_malformed("1b 0000 0000 0000 00", "truncated")
        self.assert_malformed("62 61", "truncated")
        self.assert_malformed("43 0102", "truncated")
        self.assert_malformed("83 0102", "truncated")
        self.assert_malformed("a2 0102 03", "truncated")
        self.assert_malformed("fa 0000", "truncated")
        self.assert_malformed("c2", "truncated")

    def test_truncated_integers_at_the_end_of_an_array(self):
        self.assert_malformed("82 01 18", "truncated")
        self.assert_malformed("82 01 19 01", "truncated")
        self.assert_malformed("83 01 02", "truncated")

    def test_truncated_indefinite_items(self):
        self.assert_malformed("9f 01", "truncated")
        self.assert_malformed("bf 01 02", "truncated")
        self.assert_malformed("5f 41 00", "truncated")

    def test_huge_counts_fail_fast(self):
        self.assert_malformed("9b ffffffffffffffff", "truncated")
        self.assert_malformed("bb ffffffffffffffff", "truncated")
        self.assert_malformed("5b ffffffffffffffff", "truncated")

    def test_reserved_additional_information(self):
        for byte in ("1c", "3d", "5e", "7c", "9d", "be", "dc", "fc", "fd", "fe"):
            with self.subTest(byte=byte):
                self.assert_malformed(byte, "reserved additional information")

    def test_indefinite_length_where_not_allowed(self):
        for byte in ("1f", "3f", "df"):
            with self.subTest(byte=byte):
                self.assert_malformed(byte, "indefinite length is not allowed")

    def test_stray_and_misplaced_breaks(self):
        self.assert_malformed("ff", "break")
        self.assert_malformed("81 ff", "break")
        self.assert_malformed("bf 01 ff", "break")
        self.assert_malformed("a1 ff 01", "break")
        self.assert_malformed("c1 ff", "break")

    def test_bad_chunks_of_indefinite_strings(self):
        self.assert_malformed("5f 61 61 ff", "chunk")
        self.assert_malformed("7f 41 61 ff", "chunk")
        self.assert_malformed("5f 5f 41 00 ff ff", "chunk")
        self.assert_malformed("7f 01 ff", "chunk")

    def test_invalid_utf8(self):
        self.assert_malformed("62 c328", "UTF-8")
        self.assert_malformed("61 ff", "UTF-8")
        self.assert_malformed("7f 61 c3 61 bc ff", "UTF-8")

    def test_trailing_bytes(self):
        error = self.assert_malformed("01 02", "trailing")
        self.assertEqual(error.offset, 1)

    def test_simple_value_in_two_bytes_below_32(self):
        self.assert_malformed("f8 10", "simple value")

    def test_bignum_without_a_byte_string(self):
        self.assert_malformed("c2 01", "bignum")

    def test_duplicate_and_unhashable_map_keys(self):
        self.assert_malformed("a2 01 02 01 03", "duplicate map key")
        self.assert_malformed("a1 a0 01", "unsupported map key")

    def test_nesting_past_the_limit(self):
        self.assert_malformed("81" * (cbor.MAX_DEPTH + 1) + "00", "nested deeper")
        self.assert_malformed("9f" * (cbor.MAX_DEPTH + 1) + "00", "nested deeper")

    def test_error_names_the_offset(self):
        error = self.assert_malformed("82 01 1c", "reserved")
        self.assertEqual(error.offset, 2)
        self.assertIn("at byte 2", str(error))

    def test_loads_takes_bytes_only(self):
        with self.assertRaises(TypeError):
            loads("00")


class EncodeErrors(unittest.TestCase):
    def test_integers_past_64_bits(self):
        for v in (2**64, -2**64 - 1):
            with self.subTest(v=v):
                with self.assertRaises(CBOREncodeError) as caught:
                    dumps(v)
                self.assertIn("64-bit range", str(caught.exception))

    def test_unsupported_types_name_the_path(self):
        with self.assertRaises(CBOREncodeError) as caught:
            dumps({"a": [1, {2, 3}]})
        self.assertIn("['a'][1]", str(caught.exception))
        self.assertIn("set", str(caught.exception))
        with self.assertRaises(CBOREncodeError) as caught:
            dumps([0, {1: [2**70]}])
        self.assertTrue(str(caught.exception).startswith("[1][1][0]: integer"), str(caught.exception))
        with self.assertRaises(CBOREncodeError) as caught:
            dumps(object())
        self.assertTrue(str(caught.exception).startswith("the value: cannot encode"))

    def test_lone_surrogates(self):
        with self.assertRaises(CBOREncodeError):
            dumps("\ud800")

    def test_default_hook(self):
        class Point:
            def __init__(self, x):
                self.x = x

        def default(v):
            return {"x": v.x} if isinstance(v, Point) else NotImplemented

        self.assertEqual(loads(dumps([Point(1)], default=default)), [{"x": 1}])
        with self.assertRaises(CBOREncodeError):
            dumps(object(), default=default)

    def test_deep_nesting_fails_cleanly(self):
        value = []
        for _ in range(cbor.MAX_DEPTH + 5):
            value = [value]
        with self.assertRaises(CBOREncodeError):
            dumps(value)

    def test_errors_are_value_errors(self):
        self.assertTrue(issubclass(CBOREncodeError, ValueError))
        self.assertTrue(issubclass(CBORDecodeError, ValueError))


if __name__ == "__main__":
    unittest.main()
