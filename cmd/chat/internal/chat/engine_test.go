package chat

import "testing"

// TestLocalEngineOverlappingSubscriptions: when a room's goroutine ends
// while a new one for the same room has already subscribed, the old one's
// Stop must leave the new subscription alone. (Regression: the engine kept
// one subscriber per room name, so the late Stop removed the new room's,
// and its messages were stored but shown to nobody.)
func TestLocalEngineOverlappingSubscriptions(t *testing.T) {
	e := NewLocalEngine(NewMemStore(10))
	var oldGot, newGot []uint64
	old, err := e.Subscribe("r", func(d Delivery) { oldGot = append(oldGot, d.Rec.ID) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Subscribe("r", func(d Delivery) { newGot = append(newGot, d.Rec.ID) }); err != nil {
		t.Fatal(err)
	}
	old.Stop()
	if errs := e.Publish("r", []*Record{{Room: "r", Nick: "a", Text: "hi"}}); errs != nil {
		t.Fatal(errs)
	}
	if len(newGot) != 1 || len(oldGot) != 0 {
		t.Fatalf("after the old subscription stopped: new got %v, old got %v", newGot, oldGot)
	}
}
