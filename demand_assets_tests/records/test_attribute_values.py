"""attribute_values.unmarshal: every attribute-value type, nesting, and every malformed form."""

from __future__ import annotations

import pytest

from demand_assets.records.attribute_values import unmarshal, unmarshal_image
from demand_assets.records.errors import RecordError
from demand_assets_tests.builders import attribute

P = "dynamodb.NewImage"


class TestEveryType:
    def test_string(self):
        assert unmarshal({"S": "abc"}, P, "x") == "abc"

    def test_empty_string(self):
        assert unmarshal({"S": ""}, P, "x") == ""

    @pytest.mark.parametrize(
        "text", ["0", "42", "-7", "12345678901234567890123456789012345678", "-0"]
    )
    def test_integer_numbers_are_ints(self, text):
        value = unmarshal({"N": text}, P, "x")
        assert type(value) is int
        assert value == int(text)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000.0), ("2E-2", 0.02), ("1.0", 1.0)],
    )
    def test_numbers_with_fraction_or_exponent_are_floats(self, text, expected):
        value = unmarshal({"N": text}, P, "x")
        assert type(value) is float
        assert value == expected

    def test_binary(self):
        assert unmarshal({"B": "AAEC/w=="}, P, "x") == b"\x00\x01\x02\xff"

    def test_empty_binary(self):
        assert unmarshal({"B": ""}, P, "x") == b""

    @pytest.mark.parametrize("flag", [True, False])
    def test_bool(self, flag):
        assert unmarshal({"BOOL": flag}, P, "x") is flag

    def test_null(self):
        assert unmarshal({"NULL": True}, P, "x") is None

    def test_map(self):
        assert unmarshal({"M": {"a": {"S": "x"}, "b": {"N": "1"}}}, P, "x") == {"a": "x", "b": 1}

    def test_empty_map(self):
        assert unmarshal({"M": {}}, P, "x") == {}

    def test_list(self):
        assert unmarshal({"L": [{"S": "x"}, {"N": "2"}, {"NULL": True}]}, P, "x") == ["x", 2, None]

    def test_empty_list(self):
        assert unmarshal({"L": []}, P, "x") == []

    def test_string_set_keeps_input_order(self):
        assert unmarshal({"SS": ["b", "a", "c"]}, P, "x") == ["b", "a", "c"]

    def test_number_set(self):
        assert unmarshal({"NS": ["1", "2.5", "-3"]}, P, "x") == [1, 2.5, -3]

    def test_binary_set(self):
        assert unmarshal({"BS": ["AQ==", "Ag=="]}, P, "x") == [b"\x01", b"\x02"]

    def test_nested(self):
        value = {
            "M": {
                "start": {"M": {"dateTime": {"S": "2024-01-15T10:00:00Z"}, "tz": {"NULL": True}}},
                "tags": {"L": [{"SS": ["a", "b"]}, {"M": {"n": {"NS": ["1"]}}}, {"L": []}]},
                "blob": {"BS": ["AA=="]},
                "ok": {"BOOL": False},
            }
        }
        assert unmarshal(value, P, "eventDate") == {
            "start": {"dateTime": "2024-01-15T10:00:00Z", "tz": None},
            "tags": [["a", "b"], {"n": [1]}, []],
            "blob": [b"\x00"],
            "ok": False,
        }

    def test_image(self):
        image = {"type": {"S": "sale"}, "n": {"N": "3"}, "m": {"M": {"k": {"BOOL": True}}}}
        assert unmarshal_image(image, P) == {"type": "sale", "n": 3, "m": {"k": True}}

    def test_builder_round_trip_of_every_plain_kind(self):
        plain = {
            "s": "x",
            "i": -12,
            "f": 0.5,
            "b": b"\x00\xfe",
            "t": True,
            "none": None,
            "l": [1, "a", [None]],
            "m": {"k": {"k2": 1.25}},
        }
        assert unmarshal(attribute(plain), P, "x") == plain


def _error(value, path=P, name="x") -> RecordError:
    with pytest.raises(RecordError) as info:
        unmarshal(value, path, name)
    return info.value


class TestMalformed:
    def test_unknown_tag(self):
        error = _error({"X": "1"})
        assert error.path == f"{P}.x"
        assert "unknown attribute-value type 'X'" in error.message
        assert error.message.startswith(f"{P}.x: ")

    def test_lowercase_tag_is_unknown(self):
        assert "unknown attribute-value type 's'" in _error({"s": "a"}).message

    def test_two_tags(self):
        error = _error({"S": "a", "N": "1"})
        assert error.path == f"{P}.x"
        assert "expected an attribute value" in error.problem

    def test_no_tag(self):
        assert _error({}).path == f"{P}.x"

    @pytest.mark.parametrize("value", ["a", 1, None, True, ["S", "a"]])
    def test_not_an_object(self, value):
        error = _error(value)
        assert error.path == f"{P}.x"
        assert "expected an attribute value" in error.problem

    @pytest.mark.parametrize(
        "value",
        [
            {"S": 5},
            {"S": None},
            {"N": 5},
            {"N": 1.5},
            {"BOOL": "true"},
            {"BOOL": 1},
            {"NULL": False},
            {"NULL": "true"},
            {"M": []},
            {"M": "a"},
            {"L": {}},
            {"L": "a"},
            {"B": 5},
            {"SS": "a"},
            {"SS": [1]},
            {"NS": [1]},
            {"NS": "1"},
            {"BS": [5]},
            {"BS": "AA=="},
        ],
    )
    def test_wrong_inner_type(self, value):
        (tag,) = value
        error = _error(value)
        assert error.path == f"{P}.x"
        assert f"malformed {tag} value" in error.problem

    @pytest.mark.parametrize("text", ["not base64!", "AAE", "AA==AA", "é"])
    def test_bad_base64(self, text):
        error = _error({"B": text})
        assert error.path == f"{P}.x"
        assert "base64" in error.problem

    def test_bad_base64_in_binary_set(self):
        error = _error({"BS": ["AA==", "%%"]})
        assert error.path == f"{P}.x"
        assert "base64" in error.problem

    @pytest.mark.parametrize("text", ["1e999", "-1e999", "inf", "-inf", "nan", "NaN", "Infinity"])
    def test_non_finite_number(self, text):
        error = _error({"N": text})
        assert error.path == f"{P}.x"
        assert "not a number" in error.problem

    @pytest.mark.parametrize("text", ["", "abc", "1.2.3", "0x10", "--1", "1e", "one"])
    def test_not_a_number(self, text):
        error = _error({"N": text})
        assert error.path == f"{P}.x"
        assert "not a number" in error.problem

    @pytest.mark.parametrize("text", ["1_000", " 12", "12\n", "1_0.5", "\u0661\u0662"])
    def test_number_outside_the_dynamodb_number_syntax(self, text):
        # DynamoDB writes numbers as plain decimal text; Python's int()/float() also accept
        # digit-group underscores, surrounding whitespace and non-ASCII digits. Strictness
        # (BR-003: nothing is coerced) means these are malformed, not numbers.
        error = _error({"N": text})
        assert error.path == f"{P}.x"

    def test_too_long_number(self):
        error = _error({"N": "1" * 65})
        assert error.path == f"{P}.x"
        assert "number too long (65 characters)" in error.problem

    def test_longest_accepted_number(self):
        assert unmarshal({"N": "1" * 64}, P, "x") == int("1" * 64)

    def test_too_long_number_in_number_set(self):
        assert "number too long" in _error({"NS": ["1", "2" * 100]}).problem

    def test_non_finite_number_in_number_set(self):
        assert "not a number" in _error({"NS": ["1", "1e999"]}).problem

    @pytest.mark.parametrize("tag", ["SS", "NS", "BS"])
    def test_empty_set(self, tag):
        error = _error({tag: []})
        assert error.path == f"{P}.x"
        assert error.problem == "empty set"

    @pytest.mark.parametrize(
        "value",
        [
            {"SS": ["a", "b", "a"]},
            {"NS": ["1", "2", "1"]},
            {"NS": ["1", "1.0"]},
            {"BS": ["AQ==", "AQ=="]},
        ],
    )
    def test_duplicate_set_members(self, value):
        error = _error(value)
        assert error.path == f"{P}.x"
        assert "duplicate" in error.problem


class TestErrorPaths:
    def test_top_level_attribute(self):
        assert _error({"S": 1}, P, "fanId").path == "dynamodb.NewImage.fanId"

    def test_inside_a_map(self):
        error = _error({"M": {"start": {"M": {"dateTime": {"N": 5}}}}}, P, "eventDate")
        assert error.path == "dynamodb.NewImage.eventDate.start.dateTime"

    def test_inside_a_list(self):
        error = _error({"L": [{"S": "ok"}, {"M": {"k": {"BOOL": "no"}}}]}, P, "tags")
        assert error.path == "dynamodb.NewImage.tags[1].k"

    def test_list_in_list(self):
        assert _error({"L": [{"L": [{"X": 1}]}]}, P, "a").path == "dynamodb.NewImage.a[0][0]"

    def test_without_a_name(self):
        assert _error({"S": 1}, P, None).path == P

    def test_without_a_path(self):
        assert _error({"M": {"k": {"S": 1}}}, "", "top").path == "top.k"
        assert _error({"L": [{"S": 1}]}, "", None).path == "[0]"

    def test_image_not_an_object(self):
        with pytest.raises(RecordError) as info:
            unmarshal_image([{"S": "a"}], "dynamodb.OldImage")
        assert info.value.path == "dynamodb.OldImage"
        assert "expected an item" in info.value.problem

    def test_image_attribute(self):
        with pytest.raises(RecordError) as info:
            unmarshal_image({"type": {"S": "sale"}, "id": {"Q": "1"}}, "dynamodb.OldImage")
        assert info.value.path == "dynamodb.OldImage.id"
