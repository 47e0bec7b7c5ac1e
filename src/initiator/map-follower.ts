/**
 * The initiator's side of the control plane: a gossip peer (initiator role) that follows the
 * map topic and digests, and a ClusterView rebuilt for each accepted epoch. It is the
 * ViewSource of the initiator's Volumes: a Volume told "stale epoch" asks it to fetch the
 * newer map from a neighbour and retries.
 */
import { ControlPlane, type ControlLog } from '../gossip/index.ts';
import type { ClusterConfig } from '../config/index.ts';
import { ClusterView, type ViewSource } from './cluster-view.ts';

/** Options of MapFollower.start. */
export interface MapFollowerOptions {
  config: ClusterConfig;
  /** Gossip listen address (default 127.0.0.1) and port (default 0: any). */
  host?: string;
  port?: number;
  log: ControlLog;
  /** File keeping the latest accepted map (optional). */
  persistPath?: string;
  /** Follow the map and digest topics (default true; false: learn maps only on demand). */
  followMaps?: boolean;
  /** Milliseconds refresh() may spend fetching a newer map (default 3000). */
  refreshTimeoutMs?: number;
}

/** A running map follower. */
export class MapFollower implements ViewSource {
  private view: ClusterView;

  private constructor(readonly control: ControlPlane, private readonly opts: MapFollowerOptions) {
    this.view = new ClusterView(control.keeper.map, opts.config.pools);
  }

  /** Starts the gossip peer and loads the persisted map. @throws Error when it cannot listen. */
  static async start(opts: MapFollowerOptions): Promise<MapFollower> {
    const control = await ControlPlane.start({
      config: opts.config,
      role: { kind: 'initiator' },
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 0,
      log: opts.log,
      persistPath: opts.persistPath,
      followMaps: opts.followMaps,
    });
    return new MapFollower(control, opts);
  }

  /** The view of the newest map held (rebuilt once per epoch). */
  get current(): ClusterView {
    const m = this.control.keeper.map;
    if (m.epoch !== this.view.epoch) this.view = new ClusterView(m, this.opts.config.pools);
    return this.view;
  }

  /** The newest epoch held. */
  get epoch(): number {
    return this.control.keeper.epoch;
  }

  async refresh(epoch: number): Promise<ClusterView> {
    await this.control.fetchMap(epoch, this.opts.refreshTimeoutMs ?? 3000);
    return this.current;
  }

  /** Stops the gossip peer. */
  async stop(): Promise<void> {
    await this.control.stop();
  }
}
