"""A room's anonymous speakers shared by several nodes through a real Redis (server/cluster/speakers.py): each
"node" here is its own :class:`SharedSpeakers` with its own client and its own copy, as in two processes.
Synthetic embeddings with chosen cosines (as tests/test_clusters.py); real calls on two nodes: test_cluster.py."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import redis

from server.cluster.registry import connect
from server.cluster.speakers import SharedSpeakers, state_key
from server.speaker.clusters import AnonymousSpeakers

DIM = 192


def unit(i: int) -> np.ndarray:
    return np.eye(DIM, dtype=np.float32)[i]


def near(i: int, j: int, cos: float = 0.9) -> np.ndarray:
    v = cos * unit(i) + np.sqrt(1 - cos**2) * unit(j)
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def nodes(redis_server):
    """Two nodes' views of room ``standup``: ``make()`` gives another one."""
    redis_server.flush()
    clients = []

    def make(room="standup"):
        client = connect(redis_server.url)
        clients.append(client)
        return SharedSpeakers(client, room, AnonymousSpeakers(join_threshold=0.6, new_speaker_min_s=2.0))

    yield make
    for client in clients:
        client.close()


def test_one_voice_keeps_its_label_on_either_node_and_numbers_never_collide(nodes):
    a, b = nodes(), nodes()
    first = a.assign(unit(0), 3.0)
    assert (first.identity.id, first.reason) == ("anon:1", "new_speaker")
    # the same voice in a call on node b joins a's speaker instead of founding "Speaker 1" again
    again = b.assign(near(0, 7), 2.5)
    assert (again.identity.id, again.reason) == ("anon:1", "cluster")
    other = b.assign(unit(1), 3.0)
    assert (other.identity.id, other.identity.label) == ("anon:2", "Speaker 2")
    assert [(s.identity.id, s.utterances) for s in a.summaries()] == [("anon:1", 2), ("anon:2", 1)]
    # a name given on one node is what the other labels with, and is refused twice in the room
    named = a.name("anon:2", "Bea")
    assert (named.identity.label, named.reason) == ("Bea", "named")
    assert b.assign(near(1, 8), 2.0).identity.label == "Bea"
    assert b.labels_in_use() == {"speaker 1", "bea"}
    with pytest.raises(KeyError):
        b.find("anon:9")
    # a room of its own has its own speakers
    assert nodes("retro").assign(unit(1), 3.0).identity.id == "anon:1"


def test_reading_writes_nothing_and_a_room_without_state_starts_at_its_stored_numbering(nodes, redis_server):
    a = nodes()
    a.first_number = 5  # the stored transcript used Speaker 1..4
    assert a.assign(unit(0), 3.0).identity.id == "anon:5"
    client = redis.Redis.from_url(redis_server.url)
    try:
        stored = client.get(state_key("standup"))
        b = nodes()
        b.first_number = 1  # ignored: the shared state has its numbering
        assert b.find("anon:5").speech_s == pytest.approx(3.0)
        assert b.summaries()[0].identity.label == "Speaker 5"
        assert client.get(state_key("standup")) == stored  # reads did not rewrite the state
        assert 0 < client.ttl(state_key("standup")) <= 24 * 3600
        assert b.assign(unit(1), 3.0).identity.id == "anon:6"
    finally:
        client.close()


def test_two_nodes_assigning_at_once_lose_no_utterance_and_agree_on_every_voice(nodes):
    a, b = nodes(), nodes()
    voices, per_node = 3, 40
    seen: dict[str, list[tuple[int, str]]] = {"a": [], "b": []}

    def speak(name, node, seed):
        rng = np.random.default_rng(seed)
        for k in range(per_node):
            voice = k % voices
            emb = near(voice, 10 + int(rng.integers(100)), 0.95)
            seen[name].append((voice, node.assign(emb, 2.5).identity.id))

    threads = [threading.Thread(target=speak, args=("a", a, 1)), threading.Thread(target=speak, args=("b", b, 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    labels = {}
    for voice, speaker_id in seen["a"] + seen["b"]:
        labels.setdefault(voice, set()).add(speaker_id)
    # each voice has one speaker id on both nodes (a voice opened twice at once would be merged: still one id
    # per voice for every utterance after the first two), and no two voices share an id
    assert all(len(ids) == 1 for ids in labels.values()), labels
    assert len({next(iter(ids)) for ids in labels.values()}) == voices
    total = sum(s.utterances for s in a.summaries())
    assert total == 2 * per_node  # every utterance counted once, none lost to a lost write
    print(f"transactions redone after a conflict: a {a.conflicts}, b {b.conflicts}")


def test_without_redis_a_node_goes_on_clustering_alone(caplog):
    from postgres_server import free_port

    client = connect(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)  # nothing listens there
    alone = SharedSpeakers(client, "standup", AnonymousSpeakers(join_threshold=0.6, new_speaker_min_s=2.0))
    assert alone.assign(unit(0), 3.0).identity.id == "anon:1"
    assert alone.assign(near(0, 4), 2.0).identity.id == "anon:1"  # its own copy, not a Redis error per final
    assert [s.utterances for s in alone.summaries()] == [2]  # each utterance once, though Redis failed first
    assert any("shared speakers" in r.getMessage() for r in caplog.records)
    client.close()
