package netstack

// Counters are the stack's own totals (gVisor's stack statistics) that
// tell why traffic stalls or is refused: retransmissions and timeouts,
// resets, segments and packets dropped as malformed.
type Counters struct {
	TCPSegmentsSent, TCPSegmentsReceived uint64
	TCPRetransmits, TCPTimeouts          uint64 // retransmitted segments; RTO expiries
	TCPFastRetransmits, TCPSACKRecovery  uint64
	TCPResetsSent, TCPResetsReceived     uint64
	TCPInvalidSegments, TCPChecksumErrs  uint64
	TCPSendErrors                        uint64 // segments the link refused
	TCPListenSynDrops, TCPSynCookiesSent uint64 // accept queue full
	IPMalformed, IPInvalidDestination    uint64
	UDPChecksumErrs, UDPMalformed        uint64
	UDPReceiveBufferErrors               uint64 // datagrams dropped: socket buffer full
}

// Counters returns the stack's counters since New.
func (s *Stack) Counters() Counters {
	st := s.s.Stats()
	return Counters{
		TCPSegmentsSent:        st.TCP.SegmentsSent.Value(),
		TCPSegmentsReceived:    st.TCP.ValidSegmentsReceived.Value(),
		TCPRetransmits:         st.TCP.Retransmits.Value(),
		TCPTimeouts:            st.TCP.Timeouts.Value(),
		TCPFastRetransmits:     st.TCP.FastRetransmit.Value(),
		TCPSACKRecovery:        st.TCP.SACKRecovery.Value(),
		TCPResetsSent:          st.TCP.ResetsSent.Value(),
		TCPResetsReceived:      st.TCP.ResetsReceived.Value(),
		TCPInvalidSegments:     st.TCP.InvalidSegmentsReceived.Value(),
		TCPChecksumErrs:        st.TCP.ChecksumErrors.Value(),
		TCPSendErrors:          st.TCP.SegmentSendErrors.Value(),
		TCPListenSynDrops:      st.TCP.ListenOverflowSynDrop.Value(),
		TCPSynCookiesSent:      st.TCP.ListenOverflowSynCookieSent.Value(),
		IPMalformed:            st.IP.MalformedPacketsReceived.Value(),
		IPInvalidDestination:   st.IP.InvalidDestinationAddressesReceived.Value(),
		UDPChecksumErrs:        st.UDP.ChecksumErrors.Value(),
		UDPMalformed:           st.UDP.MalformedPacketsReceived.Value(),
		UDPReceiveBufferErrors: st.UDP.ReceiveBufferErrors.Value(),
	}
}
