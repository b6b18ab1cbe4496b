package engine

import "testing"

func TestHasOpenConnections(t *testing.T) {
	idle := "Hub -1 (net0):\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\n" +
		"  TCP[HOST_FORWARD]  11       127.0.0.1 35435       10.0.2.15 35435     0     0\n"
	busy := idle + "  TCP[ESTABLISHED]   20       127.0.0.1 35435       10.0.2.15 35435     0     0\n"
	closing := idle + "  TCP[FIN_WAIT_2]    20       127.0.0.1 35435       10.0.2.15 35435     0     0\n"
	timeWait := idle + "  TCP[TIME_WAIT]     21       127.0.0.1 41145       10.0.2.15 41145     0     0\n"
	strangerHolds := idle + "  TCP[CLOSE_WAIT]    19       127.0.0.1 41833       10.0.2.15 41833     0     0\n"
	if hasOpenConnections(idle) || hasOpenConnections(timeWait) || hasOpenConnections(strangerHolds) {
		t.Error("a listener or a closed connection counted as open")
	}
	if !hasOpenConnections(busy) || !hasOpenConnections(closing) {
		t.Error("an open connection was missed")
	}
}
