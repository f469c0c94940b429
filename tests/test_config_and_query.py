"""Configuration precedence and the Query parameter parser (no server needed)."""
from __future__ import annotations

import pytest

from eucalite import config
from eucalite.compute.ec2 import filters
from eucalite.errors import AwsError
from eucalite.query import ActionRegistry, QueryParams


def test_defaults_then_file_then_environment_then_overrides(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "eucalite.toml").write_text('port = 9000\nregion = "lab"\nzones = ["z1", "z2"]\n')
    loaded = config.load({"data_dir": str(data)}, environ={})
    assert (loaded["port"], loaded["region"], loaded["zones"]) == (9000, "lab", ["z1", "z2"])
    assert loaded["database_url"] == f"sqlite:///{data}/eucalite.db"
    loaded = config.load({"data_dir": str(data)}, environ={"EUCALITE_PORT": "9100",
                                                            "EUCALITE_NODE": "off"})
    assert loaded["port"] == 9100 and loaded["node"] is False and loaded["region"] == "lab"
    loaded = config.load({"data_dir": str(data), "port": 9200},
                         environ={"EUCALITE_PORT": "9100"})
    assert loaded["port"] == 9200


def test_data_dir_and_database_url_from_environment(tmp_path):
    loaded = config.load(environ={"EUCALITE_DATA_DIR": str(tmp_path),
                                  "EUCALITE_DATABASE_URL": "postgresql://u:p@db/euca"})
    assert loaded["data_dir"] == str(tmp_path)
    assert loaded["database_url"] == "postgresql://u:p@db/euca"


def test_explicit_config_file(tmp_path):
    path = tmp_path / "custom.toml"
    path.write_text('public_url = "http://cloud.lab:8773/"\n')
    loaded = config.load({"data_dir": str(tmp_path)}, environ={"EUCALITE_CONFIG": str(path)})
    assert config.endpoints(loaded)["ec2"] == "http://cloud.lab:8773/services/compute"
    assert config.endpoints(loaded)["s3"] == "http://cloud.lab:8773"


def test_bad_values_are_reported_not_ignored(tmp_path):
    with pytest.raises(ValueError, match="EUCALITE_PORT"):
        config.load({"data_dir": str(tmp_path)}, environ={"EUCALITE_PORT": "eighty"})
    (tmp_path / "eucalite.toml").write_text("prot = 1\n")
    with pytest.raises(ValueError, match="unknown setting.*prot"):
        config.load({"data_dir": str(tmp_path)}, environ={})


def test_default_data_dir_depends_on_user(monkeypatch, tmp_path):
    monkeypatch.setattr(config.os, "geteuid", lambda: 0)
    assert str(config.default_data_dir()) == "/var/lib/eucalite"
    monkeypatch.setattr(config.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert config.default_data_dir() == tmp_path / ".local/share/eucalite"


def test_wildcard_host_is_shown_as_loopback():
    assert config.public_url({"host": "0.0.0.0", "port": 8773}) == "http://127.0.0.1:8773"


def params(**flat) -> QueryParams:
    return QueryParams([(key.replace("__", "."), value) for key, value in flat.items()])


def test_lists_are_ordered_by_index_not_arrival():
    parsed = QueryParams([("InstanceId.10", "c"), ("InstanceId.2", "b"), ("InstanceId.1", "a")])
    assert parsed.get_list("InstanceId") == ["a", "b", "c"]


def test_filters_and_structs():
    parsed = QueryParams([("Filter.1.Name", "tag:Name"), ("Filter.1.Value.1", "web"),
                          ("Filter.1.Value.2", "db"), ("Filter.2.Name", "state"),
                          ("Filter.2.Value.1", "running"),
                          ("Placement.AvailabilityZone", "z1"),
                          ("TagSpecification.1.ResourceType", "instance"),
                          ("TagSpecification.1.Tag.1.Key", "k")])
    assert filters.parse(parsed) == [("tag:Name", ["web", "db"]), ("state", ["running"])]
    assert parsed.get_struct("Placement") == {"AvailabilityZone": "z1"}
    specs = parsed.get_struct_list("TagSpecification")
    assert specs[0]["ResourceType"] == "instance"
    assert specs[0].structs("Tag") == [{"Key": "k"}]
    assert specs[0].structs("Tag")[0].name == "TagSpecification.1.Tag.1"
    with pytest.raises(AwsError) as excinfo:          # a structure where a value belongs
        specs[0]["Tag"]
    assert excinfo.value.code == "InvalidParameterValue"


@pytest.mark.parametrize("pairs, code", [
    ([("InstanceId.one", "x")], "InvalidParameterValue"),
    ([("Count", "x"), ("Count.1", "y")], "InvalidParameterValue"),
    ([("Filter.1.Name", "a")], "InvalidParameterValue"),
    ([("Filter.1.Value.1", "a")], "MissingParameter"),
])
def test_malformed_structures(pairs, code):
    with pytest.raises(AwsError) as excinfo:
        parsed = QueryParams(pairs)
        parsed.get_list("InstanceId")
        parsed.get_list("Count")
        filters.parse(parsed)
    assert excinfo.value.code == code


def test_typed_accessors():
    parsed = params(MaxResults="5", DryRun="TRUE", Bad="x")
    assert parsed.get_int("MaxResults", minimum=5, maximum=1000) == 5
    assert parsed.get_bool("DryRun") is True
    with pytest.raises(AwsError, match="between 6 and 10"):
        parsed.get_int("MaxResults", minimum=6, maximum=10)
    with pytest.raises(AwsError) as excinfo:
        parsed.get_int("Bad")
    assert excinfo.value.code == "InvalidParameterValue"
    with pytest.raises(AwsError) as excinfo:
        parsed.require("ImageId")
    assert excinfo.value.code == "MissingParameter"


def test_registry_rejects_unknown_actions_and_parameters():
    registry = ActionRegistry("test")
    registry.action("Ping", params=("Count",))(lambda call: {})
    assert registry.lookup(params(Action="Ping", Count="1")).name == "Ping"
    with pytest.raises(AwsError) as excinfo:
        registry.lookup(params(Action="Pong"))
    assert excinfo.value.code == "InvalidAction"
    with pytest.raises(AwsError) as excinfo:
        registry.lookup(params(Action="Ping", Colour="red"))
    assert excinfo.value.code == "UnknownParameter"
    with pytest.raises(AwsError) as excinfo:
        registry.lookup(params(Count="1"))
    assert excinfo.value.code == "MissingAction"


def test_query_responses_are_written_as_the_element_tree_would_write_them():
    """EC2 answers are serialised without building a tree (large DescribeInstances pages):
    the bytes must be those the ElementTree rendering gives, escaping, empty elements,
    lists of items, booleans, datetimes and characters XML cannot carry included."""
    import datetime as dt
    from xml.etree import ElementTree as ET

    from eucalite import xmlutil

    body = {
        "reservationSet": [{"reservationId": "r-1", "groupSet": [], "instancesSet": [{
            "keyName": "a<b>&c\r\x01\ud800", "dnsName": "", "reason": None,
            "amiLaunchIndex": 0, "ebsOptimized": False, "sourceDestCheck": True,
            "launchTime": dt.datetime(2026, 1, 2, 3, 4, 5, 678901),
            "tagSet": [{"key": "Name", "value": "web"}, {"key": "empty", "value": ""}],
            "placement": {"availabilityZone": "z", "groupName": None},
        }]}],
        "nextToken": None,
        "emptyDict": {},
        "count": 3,
    }
    root = ET.Element("DescribeInstancesResponse", xmlns=xmlutil.EC2_NAMESPACE)
    ET.SubElement(root, "requestId").text = "req-1"
    xmlutil.fill(root, body)
    assert xmlutil.query_response("DescribeInstances", xmlutil.EC2_NAMESPACE, "req-1",
                                  body) == xmlutil.document(root)
