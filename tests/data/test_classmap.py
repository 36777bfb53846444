import json

import pytest

from searchseg.data.classmap import class_map_from_obj, load_class_map
from searchseg.errors import UserError
from tests.conftest import DUBAI, requires


def test_label_mapping_style_with_ignore(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"classes": [{"index": 1, "name": "b", "color": "#00FF00"},
                                            {"index": 0, "name": "a", "color": [255, 0, 0]}],
                                "ignore": [{"name": "gap", "color": "#000000"}]}))
    cm = load_class_map(path)
    assert cm.names == ("a", "b")
    assert cm.colors == ((255, 0, 0), (0, 255, 0))
    assert cm.ignore_colors == ((0, 0, 0),)
    assert cm.ignore_index == 255


def test_yaml_name_to_colour_mapping(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("road: '#6EC1E4'\nwater: '#E2A929'\n")
    assert load_class_map(path).colors == ((0x6E, 0xC1, 0xE4), (0xE2, 0xA9, 0x29))


def test_a_class_dict_csv_as_camvid_and_deepglobe_ship_it(tmp_path):
    path = tmp_path / "class_dict.csv"
    path.write_text("name,r,g,b\nurban_land,0,255,255\nagriculture_land,255,255,0\n")
    cm = load_class_map(path)
    assert cm.names == ("urban_land", "agriculture_land") and cm.colors == ((0, 255, 255), (255, 255, 0))


@pytest.mark.parametrize(("text", "message"), [("name,red\nsky,3\n", "needs the columns name,r,g,b"),
                                               ("name,r,g,b\nsky,128,x,128\n", "line 2: r, g and b")])
def test_a_csv_class_map_without_colours_names_the_fix(tmp_path, text, message):
    path = tmp_path / "class_dict.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_class_map(path)


def test_names_only_for_index_masks():
    cm = class_map_from_obj({"classes": ["bg", "vessel"], "ignore_index": 254}, "x")
    assert cm.colors is None and cm.num_classes == 2 and cm.ignore_index == 254


@pytest.mark.parametrize("raw, fragment", [
    ({"classes": []}, "non-empty"),
    ({"classes": [{"name": "a", "color": "#GG0000"}]}, "colour"),
    ({"classes": [{"name": "a", "color": "#FF0000"}, {"name": "b"}]}, "every class has a colour"),
    ({"classes": [{"name": "a", "index": 3}]}, "indices"),
    ({"classes": [{"name": "a", "color": "#FF0000"}, {"name": "b", "color": "#FF0000"}]}, "share"),
    ({"classes": [{"name": "land", "color": "#8429F6"}, {"name": "road", "color": "#6EC1E4"}],
      "ignore": [{"color": "#6ec1e4"}]}, "ignore colour #6EC1E4 is also the colour of class 'road'"),
    ({"classes": [{"name": "a", "index": "0"}]}, "class 'a' has index '0'; write it as a whole number"),
    ({"classes": [{"name": "a", "index": 0.0}]}, "has index 0.0"),
])
def test_bad_class_maps_fail_naming_the_problem(raw, fragment):
    with pytest.raises(UserError, match=fragment):
        class_map_from_obj(raw, "map.json")


def test_unparseable_file_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match="broken.json does not parse"):
        load_class_map(path)


@requires(DUBAI)
def test_dubai_published_classes_json_loads_via_title():
    cm = load_class_map(DUBAI / "classes.json")
    assert "Water" in cm.names and cm.colors is not None
