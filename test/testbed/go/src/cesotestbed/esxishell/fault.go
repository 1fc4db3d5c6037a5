package esxishell

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Fault is a vSphere fault as vim-cmd prints it.
type Fault struct {
	Fault types.BaseMethodFault
	Msg   string // the localized message; computed from the fault when empty
}

func (f *Fault) Error() string { return f.Format() }

// Format renders the fault in the NEWER host format of esxi-shell.md: no dynamicType,
// members end with ", " except the one right before msg, msg itself has no comma and
// inner quotes are not escaped:
//
//	(vim.fault.NotFound) {
//	   faultCause = (vmodl.MethodFault) null,
//	   faultMessage = <unset>
//	   msg = "Unable to find a VM corresponding to "16""
//	}
func (f *Fault) Format() string {
	v := reflect.ValueOf(f.Fault)
	for v.Kind() == reflect.Ptr || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	var b strings.Builder
	b.WriteString("(" + VmodlName(v.Type()) + ") {\n")
	ms := members(v, 1)
	for i, m := range ms {
		b.WriteString(ind(1) + m.name + " = " + m.text)
		if i < len(ms)-1 {
			b.WriteString(", ")
		}
		b.WriteString("\n")
	}
	b.WriteString(ind(1) + `msg = "` + f.Message() + "\"\n")
	b.WriteString("}")
	return b.String()
}

// Message is the localized message hostd would attach to the fault (reconstructed for
// all but NotFound-for-a-vmid and InvalidPowerState, which are in the reference).
func (f *Fault) Message() string {
	if f.Msg != "" {
		return f.Msg
	}
	switch x := f.Fault.(type) {
	case *types.InvalidPowerState:
		return "The attempted operation cannot be performed in the current state (" + powerStateText(x.ExistingState) + ")."
	case *types.NotFound:
		return "The object or item referred to could not be found."
	case *types.AlreadyExists:
		return fmt.Sprintf("The specified key, name, or identifier '%s' already exists.", x.Name)
	case *types.DuplicateName:
		return fmt.Sprintf("The name '%s' already exists.", x.Name)
	case *types.FileAlreadyExists:
		return fmt.Sprintf("Cannot complete the operation because the file or folder %s already exists", x.File)
	case *types.FileNotFound:
		return fmt.Sprintf("File %s was not found", x.File)
	case *types.InvalidDatastorePath:
		return fmt.Sprintf("Invalid datastore path '%s'.", x.DatastorePath)
	case *types.InvalidArgument:
		if x.InvalidProperty != "" {
			return "A specified parameter was not correct: " + x.InvalidProperty
		}
		return "A specified parameter was not correct: "
	case *types.NotSupported:
		return "The operation is not supported on the object."
	case *types.InvalidState:
		return "The operation is not allowed in the current state."
	case *types.ToolsUnavailable:
		return "Cannot complete operation because VMware Tools is not running in this virtual machine."
	case *types.ManagedObjectNotFound:
		return fmt.Sprintf("The object 'vim.%s:%s' has already been deleted or has not been completely created", x.Obj.Type, x.Obj.Value)
	case *types.TaskInProgress:
		return "The operation is not allowed in the current state."
	case *types.InvalidVmConfig:
		return "Invalid virtual machine configuration."
	case *types.FileFault:
		return fmt.Sprintf("Error caused by file %s", x.File)
	case *types.CannotCreateFile:
		return fmt.Sprintf("Cannot create file %s", x.File)
	case *types.InvalidDeviceSpec:
		return fmt.Sprintf("Invalid configuration for device '%d'.", x.DeviceIndex)
	case *types.SystemError:
		return "A general system error occurred: " + x.Reason
	}
	return "A general system error occurred: " + reflect.TypeOf(f.Fault).Elem().Name()
}

func powerStateText(s types.VirtualMachinePowerState) string {
	switch s {
	case types.VirtualMachinePowerStatePoweredOn:
		return "Powered on"
	case types.VirtualMachinePowerStateSuspended:
		return "Suspended"
	default:
		return "Powered off"
	}
}

// AsFault turns an error from govmomi (SOAP fault, task error, vim fault) into a *Fault;
// nil when err carries no vSphere fault.
func AsFault(err error) *Fault {
	if err == nil {
		return nil
	}
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	var te task.Error
	if errors.As(err, &te) && te.LocalizedMethodFault != nil && te.LocalizedMethodFault.Fault != nil {
		return &Fault{Fault: te.LocalizedMethodFault.Fault}
	}
	if soap.IsSoapFault(err) {
		if bf := toBaseFault(soap.ToSoapFault(err).VimFault()); bf != nil {
			return &Fault{Fault: bf}
		}
		return &Fault{Fault: &types.SystemError{Reason: soap.ToSoapFault(err).String}}
	}
	if soap.IsVimFault(err) {
		return &Fault{Fault: soap.ToVimFault(err)}
	}
	return nil
}

func toBaseFault(v interface{}) types.BaseMethodFault {
	if v == nil {
		return nil
	}
	if bf, ok := v.(types.BaseMethodFault); ok {
		return bf
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Ptr {
		p := reflect.New(rv.Type())
		p.Elem().Set(rv)
		if bf, ok := p.Interface().(types.BaseMethodFault); ok {
			return bf
		}
	}
	return nil
}
