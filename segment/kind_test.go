package segment

import "testing"

func TestKinds(t *testing.T) {
	f := func(k Kind, index, compactable bool) {
		t.Helper()
		if k.IsIndex() != index || k.Compactable() != compactable {
			t.Fatalf("%s: IsIndex %v Compactable %v", k, k.IsIndex(), k.Compactable())
		}
		if got, err := ParseKind(k.String()); err != nil || got != k {
			t.Fatalf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	f(KindCommitLog, false, false)
	f(KindConsumeQueue, false, false)
	f(KindIndex, true, true)
	f(KindKafkaLog, false, false)
	f(KindKafkaOffsetIndex, true, false)
	f(KindKafkaTimeIndex, true, false)
	f(KindKafkaTxnIndex, true, false)
	f(KindKafkaSnapshot, false, false)
	if len(kinds) != 8 {
		t.Fatalf("%d kinds, want 8", len(kinds))
	}
	if _, err := ParseKind("kafka-index"); err == nil {
		t.Fatal("ParseKind accepted an unknown kind")
	}
}
