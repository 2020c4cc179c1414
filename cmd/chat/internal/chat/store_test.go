package chat

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *Hub {
		st, err := OpenBoltStore(dir, 5)
		if err != nil {
			t.Fatal(err)
		}
		return NewHub(Config{History: 5, Store: st})
	}
	stop := func(h *Hub) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h := open()
	a := connect(t, h, ConnectOptions{Nick: "a"})
	for i := range 8 {
		a.say(fmt.Sprint(i))
		a.expect(fmt.Sprintf("a: %d", i))
	}
	a.say("/me leaves")
	a.expect("* a leaves")
	stop(h)

	h = open()
	defer stop(h)
	// A newcomer gets the last 5 (the store keeps only 5).
	b := connect(t, h, ConnectOptions{Nick: "b"})
	// Plain text marks the replay, which would otherwise look live.
	for _, want := range []string{" .... earlier messages (5):", "a: 4", "a: 5", "a: 6", "a: 7", "* a leaves", " .... end of earlier messages."} {
		b.expect(want)
	}
	b.quiet(50 * time.Millisecond)

	// A JSON client resuming after message ID k gets exactly the later
	// ones, then live messages, with no duplicate.
	j := connect(t, h, ConnectOptions{Nick: "j", JSON: true})
	var ids []uint64
	for range 5 {
		ids = append(ids, j.nextEvent("message").ID)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ids not increasing: %v", ids)
		}
	}
	r := connect(t, h, ConnectOptions{Nick: "r", JSON: true, Since: ids[2], HasSince: true})
	if w := r.nextEvent("welcome"); !w.Resumed || w.Since != ids[2] {
		t.Fatalf("welcome %+v", w)
	}
	for _, want := range ids[3:] {
		if got := r.nextEvent("message").ID; got != want {
			t.Fatalf("resumed message id %d, want %d", got, want)
		}
	}
	b.say("live")
	if m := r.nextEvent("message"); m.Text != "live" || m.ID <= ids[4] {
		t.Fatalf("live message %+v", m)
	}
	// Resuming from the newest ID replays nothing.
	z := connect(t, h, ConnectOptions{Nick: "z", JSON: true, Since: ids[4] + 1, HasSince: true})
	z.nextEvent("welcome")
	if e := z.nextEvent("presence"); len(e.Users) != 4 {
		t.Fatalf("presence %+v", e)
	}
}

func TestStoresAgree(t *testing.T) {
	bs, err := OpenBoltStore(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	for _, st := range []Store{NewMemStore(3), bs} {
		var ids []uint64
		for i := range 5 {
			recs := []*Record{{Nick: "n", Text: fmt.Sprint(i)}}
			if err := st.Append("r", recs); err != nil {
				t.Fatal(err)
			}
			if len(ids) > 0 && recs[0].ID != ids[len(ids)-1]+1 {
				t.Fatalf("%T: id %d after %d", st, recs[0].ID, ids[len(ids)-1])
			}
			ids = append(ids, recs[0].ID)
		}
		// A fresh store starts at the clock, not at 1, so IDs grow across
		// a restart that lost the store.
		if ids[0] < uint64(time.Now().Add(-time.Hour).UnixMicro()) {
			t.Fatalf("%T: first id %d", st, ids[0])
		}
		st.Append("other", []*Record{{Nick: "n", Text: "o"}})
		got, _ := st.Recent("r", 0, 10)
		if len(got) != 3 || got[0].Text != "2" || got[2].Text != "4" {
			t.Fatalf("%T: recent %+v", st, got)
		}
		got, _ = st.Recent("r", ids[3], 10)
		if len(got) != 1 || got[0].ID != ids[4] {
			t.Fatalf("%T: since 4: %+v", st, got)
		}
		got, _ = st.Recent("r", 0, 2)
		if len(got) != 2 || got[0].ID != ids[3] {
			t.Fatalf("%T: limit 2: %+v", st, got)
		}
		rooms, _ := st.Rooms()
		if fmt.Sprint(rooms) != "[other r]" {
			t.Fatalf("%T: rooms %v", st, rooms)
		}
	}
}
