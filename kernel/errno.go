package kernel

// Linux errno values returned by the syscall layer (negated in RAX).
const (
	eNOENT    = 2
	eBADF     = 9
	eAGAIN    = 11
	eNOMEM    = 12
	eFAULT    = 14
	eEXIST    = 17
	eNODEV    = 19
	eINVAL    = 22
	eMFILE    = 24
	eRANGE    = 34
	eNOSYS    = 38
	eTIMEDOUT = 110
)

//go:nosplit
func errno(e uint64) uint64 { return -e }
