import { peekRuntime } from '../task/context.js';
import { currentSession, init, type Session } from '../task/init.js';
import type { TaskRuntime } from '../task/runtime.js';
import type { JobClusterConnection } from './job-cluster-options.js';

/** The session `JobCluster.create` started itself (no `init()` in this process), shared by every cluster. */
let ownSession: { session: Promise<Session>; users: number } | undefined;

/**
 * The runtime a job cluster runs on: this process's from `init()`, or a session the job clusters
 * start themselves and share (`peers`, `discovery`, or a local cluster), shut down when the last
 * of them releases it.
 */
export async function clusterSession(
  options: JobClusterConnection,
): Promise<{ runtime: TaskRuntime; session: Session | undefined; release: (() => Promise<void>) | undefined }> {
  const runtime = peekRuntime();
  if (runtime) return { runtime, session: currentSession(), release: undefined };
  ownSession ??= { session: init(connectionOf(options)), users: 0 };
  const shared = ownSession;
  shared.users++;
  let session: Session;
  try {
    session = await shared.session;
  } catch (error) {
    if (ownSession === shared) ownSession = undefined;
    throw error;
  }
  const release = async () => {
    if (--shared.users > 0) return;
    if (ownSession === shared) ownSession = undefined;
    await session.shutdown();
  };
  return { runtime: session.runtime, session, release };
}

function connectionOf(options: JobClusterConnection): Parameters<typeof init>[0] {
  return {
    ...(options.peers ? { peers: options.peers } : {}),
    ...(options.discovery ? { discovery: true } : {}),
    ...(options.secret !== undefined ? { secret: options.secret } : {}),
    ...(options.local ? { local: options.local } : {}),
  };
}
