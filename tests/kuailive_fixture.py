"""A small KuaiLive archive in the exact published schema (headers, column order, types,
millisecond timestamps, date strings; https://imgkkk574.github.io/KuaiLive), written by a seed.

The real archive is CC BY-NC-SA 4.0 and never shipped: tests write this one instead. It
spans 2025-05-05..2025-05-25 like the real one, with streamers live on some days only (some
first live inside the span), users who gift in rooms they clicked, and a known set of
unusable lines, each with one defect. :func:`write_fixture` returns what a correct import
must load per table and reject per file and reason. ``click.csv`` and ``gift.csv`` name the
streamer column ``author_id`` (as the official scripts do), the other files ``streamer_id``.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DAY_MS = 86_400_000
FIRST_DAY = dt.date(2025, 5, 5)
N_DAYS = 21
LAST_DS = (FIRST_DAY + dt.timedelta(days=N_DAYS - 1)).isoformat()  # 2025-05-25
TAGS = ("Relationship", "Game", "Music", "Shop", "Outdoor", "Food")
CATEGORIES = {"Relationship": "chat", "Game": "game", "Music": "music", "Shop": "shop",
              "Outdoor": "outdoor", "Food": "food"}

STREAMER_COLS = ["streamer_id", "gender", "age", "country", "device_brand", "device_price",
                 "live_operation_tag", "fans_user_num", "fans_group_fans_num", "follow_user_num",
                 "first_live_timestamp", "accu_live_cnt", "accu_live_duration", "accu_play_cnt",
                 "accu_play_duration", "reg_timestamp", *[f"onehot_feat{i}" for i in range(7)]]
ROOM_COLS = ["p_date", "live_id", "streamer_id", "live_type", "start_timestamp",
             "end_timestamp", "live_content_category", "live_name_id"]
USER_COLS = ["user_id", "age", "gender", "country", "device_brand", "device_price",
             "reg_timestamp", "fans_num", "follow_num", "first_watch_live_timestamp",
             "accu_watch_live_cnt", "accu_watch_live_duration", "is_live_streamer",
             "is_photo_author", *[f"onehot_feat{i}" for i in range(7)]]
EVENT_COLS = ["user_id", "live_id", "streamer_id", "timestamp"]


@dataclass
class Expected:
    loaded: dict[str, int]
    rejected: dict[str, dict[str, int]]
    read: dict[str, int]
    no_text_authors: int            # loaded streamers with no structured field at all
    counted_only: dict[str, int] = field(default_factory=dict)


def _ms(day: int, hour: float) -> int:
    start = dt.datetime.combine(FIRST_DAY, dt.time(), dt.UTC).timestamp() * 1000
    return int(start + day * DAY_MS + hour * 3_600_000)


def write_fixture(folder: Path, n_users: int = 40, n_streamers: int = 60,
                  seed: int = 11) -> Expected:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[list]] = {f: [] for f in (
        "user.csv", "streamer.csv", "room.csv", "gift.csv", "click.csv", "negative.csv",
        "comment.csv", "like.csv")}
    bad: dict[str, Counter] = {f: Counter() for f in rows}

    users = np.arange(n_users) + 1
    for u in users:
        rows["user.csv"].append([u, "18-23", rng.choice(["M", "F"]), "China", "APPLE", "5000+",
                                 "2023-05-03", "0-10", "10-100", "2023-05-03", "0-50000",
                                 "0-1000000000", 0, 0, *rng.integers(0, 2, 7)])
    user_taste = rng.integers(0, len(TAGS), n_users)

    streamers = np.arange(n_streamers) + 100
    tag = rng.integers(0, len(TAGS), n_streamers)
    first_day = np.where(rng.random(n_streamers) < 0.2, rng.integers(1, N_DAYS, n_streamers), -1)
    for i, s in enumerate(streamers):
        first = ("2018-02-04" if first_day[i] < 0
                 else (FIRST_DAY + dt.timedelta(days=int(first_day[i]))).isoformat())
        rows["streamer.csv"].append([s, rng.choice(["M", "F"]), "24-30", "China", "HUAWEI",
                                     "2000-5000", TAGS[tag[i]], "10000-100000", "0-10",
                                     "1000-10000", first, "100-500", "500000000-1000000000",
                                     "100000-500000", "50000000000-100000000000", "2014-07-03",
                                     *rng.integers(0, 2, 7)])
    # A streamer with no structured field at all: loaded, then dropped by ingest as no_text.
    blank = 100 + n_streamers
    rows["streamer.csv"].append([blank, *[""] * 15, *rng.integers(0, 2, 7)])
    no_text = 1

    # Live rooms: each streamer goes live on a day with a personal propensity, from its first
    # day on; one room a day, evening-heavy.
    live_id = 7_000_000
    rooms_by_day: dict[int, list[tuple[int, int, int]]] = {d: [] for d in range(N_DAYS)}
    propensity = rng.uniform(0.3, 0.9, n_streamers)
    for d in range(N_DAYS):
        for i, s in enumerate(streamers):
            if d < max(first_day[i], 0) or (d != first_day[i] and rng.random() > propensity[i]):
                continue
            live_id += 1
            start = _ms(d, rng.uniform(0, 6))
            end = start + int(rng.uniform(14, 18) * 3_600_000)
            p_date = int((FIRST_DAY + dt.timedelta(days=d)).strftime("%Y%m%d"))
            rows["room.csv"].append([p_date, live_id, s, int(rng.integers(1, 4)), start, end,
                                     CATEGORIES[TAGS[tag[i]]], int(rng.integers(0, 1000))])
            rooms_by_day[d].append((live_id, int(s), i))

    # Interactions: per user-day a few clicks on live rooms (mostly of the user's taste), a
    # gift in some clicked rooms (always one in the late evening somewhere: fresh days),
    # negatives (exposures not clicked), a comment or a like now and then.
    for d in range(N_DAYS):
        live = rooms_by_day[d]
        late_gift_done = False
        for ui, u in enumerate(users):
            liked = [r for r in live if tag[r[2]] == user_taste[ui]] or live
            for _ in range(int(rng.integers(2, 5))):
                room = liked[int(rng.integers(0, len(liked)))] if rng.random() < 0.7 \
                    else live[int(rng.integers(0, len(live)))]
                ts = _ms(d, rng.uniform(8, 21))
                rows["click.csv"].append([u, room[0], room[1], ts, int(rng.integers(1000, 600_000))])
                if rng.random() < 0.12 or (not late_gift_done and ui == d % n_users):
                    hour = 23.5 if not late_gift_done else rng.uniform(21, 23)
                    late_gift_done = True
                    rows["gift.csv"].append([u, room[0], room[1], _ms(d, hour),
                                             int(rng.choice([1, 2, 5, 10, 50]))])
                if rng.random() < 0.05:
                    rows["comment.csv"].append([u, room[0], room[1], ts + 30_000])
                if rng.random() < 0.05:
                    rows["like.csv"].append([u, room[0], room[1], ts + 40_000])
            for _ in range(int(rng.integers(3, 7))):
                room = live[int(rng.integers(0, len(live)))]
                rows["negative.csv"].append([u, room[0], room[1], _ms(d, rng.uniform(8, 21))])

    loaded = {"authors": len(rows["streamer.csv"]), "author_media": len(rows["room.csv"]),
              "tip_events": len(rows["gift.csv"]),
              "impressions": len(rows["click.csv"]) + len(rows["negative.csv"])}
    counted = {"comment.csv": len(rows["comment.csv"]), "like.csv": len(rows["like.csv"])}

    # ---- unusable lines, one defect each ----------------------------------------------------
    def plant(file: str, reason: str, row: list) -> None:
        rows[file].insert(int(rng.integers(1, len(rows[file]))), row)
        bad[file][reason] += 1

    a_room = rows["room.csv"][5]
    rid, sid = a_room[1], a_room[2]
    t = a_room[4] + 3_600_000
    plant("user.csv", "not_an_integer", ["u7", *rows["user.csv"][0][1:]])
    plant("user.csv", "duplicate_key", list(rows["user.csv"][3]))
    plant("streamer.csv", "duplicate_key", list(rows["streamer.csv"][2]))
    plant("room.csv", "missing_field", [20250510, 9_000_001, sid, 1, "", t, "shop", 1])
    plant("room.csv", "unknown_streamer", [20250510, 9_000_002, 999_999, 1, t, t + 1, "shop", 1])
    plant("gift.csv", "missing_field", ["", rid, sid, t, 5])
    plant("gift.csv", "timestamp_not_ms", [1, rid, sid, t // 1000, 5])
    plant("gift.csv", "invalid_amount", [2, rid, sid, t, 0])
    plant("gift.csv", "not_an_integer", [3, "abc", sid, t, 5])
    plant("gift.csv", "unknown_streamer", [4, rid, 999_999, t, 5])
    plant("gift.csv", "duplicate_row", list(rows["gift.csv"][10]))
    plant("click.csv", "unknown_user", [5_000, rid, sid, t, 1000])
    plant("click.csv", "unknown_room", [1, 9_000_001, sid, t, 1000])  # its room was rejected
    plant("click.csv", "duplicate_row", list(rows["click.csv"][7]))
    plant("negative.csv", "missing_field", [1, rid, "", t])
    plant("comment.csv", "unknown_user", [5_001, rid, sid, t])

    author_col = {"click.csv": "author_id", "gift.csv": "author_id"}
    headers = {"user.csv": USER_COLS, "streamer.csv": STREAMER_COLS, "room.csv": ROOM_COLS,
               "gift.csv": [*EVENT_COLS, "gift_price"],
               "click.csv": [*EVENT_COLS, "watch_live_time"],
               "negative.csv": EVENT_COLS, "comment.csv": EVENT_COLS, "like.csv": EVENT_COLS}
    for name, body in rows.items():
        header = [author_col.get(name, c) if c == "streamer_id" else c for c in headers[name]]
        with open(folder / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows([[int(v) if isinstance(v, np.integer) else v for v in r]
                              for r in body])
    return Expected(loaded=loaded, read={k: len(v) for k, v in rows.items()},
                    rejected={k: dict(v) for k, v in bad.items() if v},
                    no_text_authors=no_text, counted_only=counted)
