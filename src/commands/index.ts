// Every command, by id: oclif's "explicit" discovery, so the whole CLI is one bundle.
import Audit from './audit.js';
import BackupList from './backup/list.js';
import ConfigInit from './config/init.js';
import ConfigValidate from './config/validate.js';
import HostTrust from './host/trust.js';
import Metrics from './metrics.js';
import PoolAcquire from './pool/acquire.js';
import PoolDestroy from './pool/destroy.js';
import PoolFill from './pool/fill.js';
import PoolRelease from './pool/release.js';
import PoolReap from './pool/reap.js';
import PoolStatus from './pool/status.js';
import LockList from './lock/list.js';
import LockRelease from './lock/release.js';
import Schema from './schema.js';
import StateMigrate from './state/migrate.js';
import TemplateImport from './template/import.js';
import TemplateList from './template/list.js';
import VmBackup from './vm/backup.js';
import VmClone from './vm/clone.js';
import VmCreate from './vm/create.js';
import VmDelete from './vm/delete.js';
import VmInfo from './vm/info.js';
import VmIp from './vm/ip.js';
import VmList from './vm/list.js';
import VmPower from './vm/power.js';
import VmReap from './vm/reap.js';
import VmReconfigure from './vm/reconfigure.js';
import VmRestore from './vm/restore.js';
import VmSnapshotCreate from './vm/snapshot/create.js';
import VmSnapshotDelete from './vm/snapshot/delete.js';
import VmSnapshotList from './vm/snapshot/list.js';
import VmSnapshotRevert from './vm/snapshot/revert.js';

export const COMMANDS = {
  audit: Audit,
  'backup:list': BackupList,
  'config:init': ConfigInit,
  'config:validate': ConfigValidate,
  'host:trust': HostTrust,
  metrics: Metrics,
  'pool:acquire': PoolAcquire,
  'pool:destroy': PoolDestroy,
  'pool:fill': PoolFill,
  'pool:reap': PoolReap,
  'pool:release': PoolRelease,
  'pool:status': PoolStatus,
  'lock:list': LockList,
  'lock:release': LockRelease,
  schema: Schema,
  'state:migrate': StateMigrate,
  'template:import': TemplateImport,
  'template:list': TemplateList,
  'vm:backup': VmBackup,
  'vm:clone': VmClone,
  'vm:create': VmCreate,
  'vm:delete': VmDelete,
  'vm:info': VmInfo,
  'vm:ip': VmIp,
  'vm:list': VmList,
  'vm:power': VmPower,
  'vm:reap': VmReap,
  'vm:reconfigure': VmReconfigure,
  'vm:restore': VmRestore,
  'vm:snapshot:create': VmSnapshotCreate,
  'vm:snapshot:delete': VmSnapshotDelete,
  'vm:snapshot:list': VmSnapshotList,
  'vm:snapshot:revert': VmSnapshotRevert,
};
