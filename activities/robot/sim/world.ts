/**
 * A toy tabletop world for a WidowX-250-like arm in the BridgeData v2 conventions (docs/method.md, "Source data"):
 * meters, +x forward (away from the base), +y left, +z up, table top at z = 0, control at 5 Hz.
 *
 * Everything here is plain data and pure functions so that a world can be serialised (JSON), replayed
 * and stepped identically by the demonstrator and, later, by a robot station executing action chunks.
 */
import type { Action7, State7 } from '../../../data-schemas/d-rob';

export type Vec3 = readonly [number, number, number];

export const OBJECT_KINDS = [
  'carrot',
  'eggplant',
  'pan',
  'plate',
  'fish',
  'pot',
  'spoon',
  'towel',
  'basket',
  'cup',
  'green_block',
  'yellow_block',
  'picture_card',
] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

/**
 * Kinds laid out as the physical props of a scene (task objects and distractors). Picture cards are
 * placed only by the scenes that refer to them, so adding them left every other scene's random draws
 * unchanged.
 */
export const PROP_KINDS: readonly ObjectKind[] = OBJECT_KINDS.filter((k) => k !== 'picture_card');

/** Footprint in the object's own frame: u along its yaw axis, v to its left. */
export type Footprint = { readonly shape: 'circle'; readonly r: number } | { readonly shape: 'rect'; readonly hu: number; readonly hv: number };

export interface ObjectSpec {
  readonly kind: ObjectKind;
  /** Words people use for it; the first is the canonical name. */
  readonly names: readonly string[];
  /** Understood in instructions but not used when wording them (e.g. other languages). */
  readonly aliases?: readonly string[];
  readonly height: number;
  /** The region that catches a released object (and the body used for containment). */
  readonly footprint: Footprint;
  /**
   * How something released over it rests: ON its top surface or IN it (on its floor).
   * Undefined: nothing rests on it (released objects fall past it onto the table).
   */
  readonly holds?: { readonly relation: 'on' | 'in'; readonly surfaceZ: number };
  /** Gripper opening (0..1) when closed on it; undefined when it cannot be grasped. */
  readonly holdWidth?: number;
  /** Circles (local u, v, r) that must not overlap another object's when a scene is laid out. */
  readonly clearance: readonly (readonly [number, number, number])[];
}

export const OBJECT_SPECS: Readonly<Record<ObjectKind, ObjectSpec>> = {
  carrot: { kind: 'carrot', names: ['carrot'], aliases: ['gajar'], height: 0.022, footprint: { shape: 'rect', hu: 0.045, hv: 0.013 }, holdWidth: 0.3, clearance: [[0, 0, 0.05]] },
  eggplant: { kind: 'eggplant', names: ['eggplant', 'aubergine', 'brinjal'], aliases: ['baingan'], height: 0.045, footprint: { shape: 'rect', hu: 0.048, hv: 0.024 }, holdWidth: 0.45, clearance: [[0, 0, 0.055]] },
  pan: {
    kind: 'pan',
    names: ['pan', 'frying pan', 'skillet'],
    height: 0.035,
    footprint: { shape: 'circle', r: 0.07 },
    holds: { relation: 'in', surfaceZ: 0.008 },
    clearance: [
      [0, 0, 0.072],
      [0.115, 0, 0.035],
    ],
  },
  plate: { kind: 'plate', names: ['plate', 'dish'], height: 0.012, footprint: { shape: 'circle', r: 0.065 }, holds: { relation: 'on', surfaceZ: 0.012 }, clearance: [[0, 0, 0.067]] },
  fish: { kind: 'fish', names: ['fish'], height: 0.02, footprint: { shape: 'rect', hu: 0.048, hv: 0.016 }, holdWidth: 0.3, clearance: [[0, 0, 0.055]] },
  pot: { kind: 'pot', names: ['pot', 'silver pot', 'cooking pot'], aliases: ['saucepan'], height: 0.07, footprint: { shape: 'circle', r: 0.06 }, holds: { relation: 'in', surfaceZ: 0.01 }, clearance: [[0, 0, 0.072]] },
  spoon: { kind: 'spoon', names: ['spoon'], aliases: ['teaspoon', 'tablespoon'], height: 0.012, footprint: { shape: 'rect', hu: 0.048, hv: 0.011 }, holdWidth: 0.1, clearance: [[0, 0, 0.05]] },
  towel: { kind: 'towel', names: ['towel', 'cloth', 'rag'], aliases: ['dishcloth', 'tea towel', 'napkin'], height: 0.006, footprint: { shape: 'rect', hu: 0.06, hv: 0.05 }, holds: { relation: 'on', surfaceZ: 0.006 }, clearance: [[0, 0, 0.075]] },
  basket: { kind: 'basket', names: ['basket'], height: 0.06, footprint: { shape: 'rect', hu: 0.065, hv: 0.05 }, holds: { relation: 'in', surfaceZ: 0.008 }, clearance: [[0, 0, 0.08]] },
  cup: { kind: 'cup', names: ['cup', 'mug'], height: 0.07, footprint: { shape: 'circle', r: 0.025 }, holdWidth: 0.45, clearance: [[0, 0, 0.035]] },
  green_block: {
    kind: 'green_block',
    names: ['green block', 'green cube'],
    height: 0.04,
    footprint: { shape: 'rect', hu: 0.02, hv: 0.02 },
    holds: { relation: 'on', surfaceZ: 0.04 },
    holdWidth: 0.4,
    clearance: [[0, 0, 0.03]],
  },
  yellow_block: {
    kind: 'yellow_block',
    names: ['yellow block', 'yellow cube'],
    height: 0.04,
    footprint: { shape: 'rect', hu: 0.02, hv: 0.02 },
    holds: { relation: 'on', surfaceZ: 0.04 },
    holdWidth: 0.4,
    clearance: [[0, 0, 0.03]],
  },
  // A printed card lying flat, its picture on the far half and its label (SimObject.label) on the
  // near half as the main camera sees it; nothing rests on it and it cannot be picked up.
  picture_card: {
    kind: 'picture_card',
    names: ['picture card', 'card', 'picture'],
    height: 0.002,
    footprint: { shape: 'rect', hu: 0.032, hv: 0.05 },
    clearance: [
      [0, -0.025, 0.035],
      [0, 0.025, 0.035],
    ],
  },
};

export const TABLE = 'table';

/** What an object rests on or in (another object's id or the table), or that the gripper holds it. */
export type Support = { readonly relation: 'on' | 'in'; readonly target: string } | { readonly relation: 'held' };

export interface SimObject {
  readonly id: string;
  readonly kind: ObjectKind;
  /** Center of the object's base, meters. */
  readonly pos: Vec3;
  readonly yaw: number;
  readonly support: Support;
  /** What is printed on a picture card, e.g. "Ash Ketchum"; absent for other kinds. */
  readonly label?: string;
}

export interface EndEffector {
  /** The point between the fingertips, meters. */
  readonly pos: Vec3;
  readonly rpy: Vec3;
  /** Actual opening, 0 = closed .. 1 = open; cannot close past a held object. */
  readonly gripper: number;
}

export interface World {
  /** Steps applied so far. */
  readonly t: number;
  readonly ee: EndEffector;
  readonly objects: readonly SimObject[];
  /** The held object and the offset of its base center from the fingertip point. */
  readonly held: { readonly id: string; readonly offset: Vec3 } | null;
}

/** Where the end effector may go; actions that would leave it are clipped. */
export const WORKSPACE = { x: [0.1, 0.5], y: [-0.25, 0.25], z: [0.004, 0.3] } as const;
/** Largest translation per step and axis (meters), about 15 cm/s at 5 Hz. */
export const MAX_STEP_M = 0.03;
export const MAX_STEP_RAD = 0.2;
/** Commands below this close the gripper, at or above open it. */
export const GRIPPER_THRESHOLD = 0.5;
/** How close (meters) the fingertip must be to a grasp point, horizontally and vertically. */
export const GRASP_TOLERANCE = { xy: 0.025, z: 0.025 } as const;

export const DEFAULT_EE: EndEffector = { pos: [0.3, 0, 0.16], rpy: [0, 0, 0], gripper: 1 };

export interface ObjectPlacement {
  kind: ObjectKind;
  x: number;
  y: number;
  yaw?: number;
  id?: string;
  /** A picture card's printed label. */
  label?: string;
}

/** A world with every object resting on the table. */
export function createWorld(placements: readonly ObjectPlacement[], ee: EndEffector = DEFAULT_EE): World {
  const objects = placements.map<SimObject>((p) => ({
    id: p.id ?? p.kind,
    kind: p.kind,
    pos: [p.x, p.y, 0],
    yaw: p.yaw ?? 0,
    support: { relation: 'on', target: TABLE },
    ...(p.label === undefined ? {} : { label: p.label }),
  }));
  const ids = new Set(objects.map((o) => o.id));
  if (ids.size !== objects.length) throw new Error('object ids must be unique');
  return { t: 0, ee, objects, held: null };
}

export function findObject(world: World, id: string): SimObject | undefined {
  return world.objects.find((o) => o.id === id);
}

export function getObject(world: World, id: string): SimObject {
  const o = findObject(world, id);
  if (!o) throw new Error(`no object ${id} in the world`);
  return o;
}

export function isGraspable(kind: ObjectKind): boolean {
  return OBJECT_SPECS[kind].holdWidth !== undefined;
}

/** The point the fingertips aim for: the middle of the body. */
export function graspPoint(o: SimObject): Vec3 {
  return [o.pos[0], o.pos[1], o.pos[2] + OBJECT_SPECS[o.kind].height / 2];
}

export function topZ(o: SimObject): number {
  return o.pos[2] + OBJECT_SPECS[o.kind].height;
}

/** Whether the world point (x, y) lies over the object's footprint. */
export function footprintContains(o: SimObject, x: number, y: number): boolean {
  const fp = OBJECT_SPECS[o.kind].footprint;
  const dx = x - o.pos[0];
  const dy = y - o.pos[1];
  if (fp.shape === 'circle') return dx * dx + dy * dy <= fp.r * fp.r;
  const c = Math.cos(o.yaw);
  const s = Math.sin(o.yaw);
  const u = c * dx + s * dy;
  const v = -s * dx + c * dy;
  return Math.abs(u) <= fp.hu && Math.abs(v) <= fp.hv;
}

/** Objects resting directly on or in `id`. */
export function objectsSupportedBy(world: World, id: string): SimObject[] {
  return world.objects.filter((o) => o.support.relation !== 'held' && o.support.target === id);
}

/** Whether `id` rests (directly) on or in `target`. */
export function restsOn(world: World, id: string, target: string): boolean {
  const o = findObject(world, id);
  return o !== undefined && o.support.relation !== 'held' && o.support.target === target;
}

/** The Bridge state [x, y, z, roll, pitch, yaw, gripper]. */
export function state7(world: World): State7 {
  const { pos, rpy, gripper } = world.ee;
  return [pos[0], pos[1], pos[2], rpy[0], rpy[1], rpy[2], gripper];
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/**
 * The action the arm would really execute from `ee`: per-axis limits, then the workspace box.
 * Exposed so that controllers can pre-clip and keep action == state delta exactly.
 */
export function clipAction(ee: EndEffector, action: Action7): Action7 {
  const lim = (v: number, m: number): number => clamp(Number.isFinite(v) ? v : 0, -m, m);
  const [x, y, z] = ee.pos;
  const dx = clamp(x + lim(action[0], MAX_STEP_M), WORKSPACE.x[0], WORKSPACE.x[1]) - x;
  const dy = clamp(y + lim(action[1], MAX_STEP_M), WORKSPACE.y[0], WORKSPACE.y[1]) - y;
  const dz = clamp(z + lim(action[2], MAX_STEP_M), WORKSPACE.z[0], WORKSPACE.z[1]) - z;
  const g = Number.isFinite(action[6]) ? clamp(action[6], 0, 1) : ee.gripper;
  return [dx, dy, dz, lim(action[3], MAX_STEP_RAD), lim(action[4], MAX_STEP_RAD), lim(action[5], MAX_STEP_RAD), g];
}

/**
 * Where a released object at (x, y) comes to rest: on/in the highest receptacle whose footprint
 * contains its center, else on the table.
 */
function landing(world: World, droppedId: string, x: number, y: number): { support: Support; z: number } {
  let best: { support: Support; z: number } = { support: { relation: 'on', target: TABLE }, z: 0 };
  for (const o of world.objects) {
    if (o.id === droppedId || o.support.relation === 'held') continue;
    const holds = OBJECT_SPECS[o.kind].holds;
    if (!holds || !footprintContains(o, x, y)) continue;
    // A receptacle that already carries something is covered by it; only the top of a pile catches.
    if (objectsSupportedBy(world, o.id).length > 0) continue;
    const z = o.pos[2] + holds.surfaceZ;
    if (z > best.z) best = { support: { relation: holds.relation, target: o.id }, z };
  }
  return best;
}

/** The graspable object the fingertip at `tip` would close on, if any (nearest first). */
export function graspCandidate(world: World, tip: Vec3): SimObject | undefined {
  let best: SimObject | undefined;
  let bestD = Infinity;
  for (const o of world.objects) {
    if (!isGraspable(o.kind) || o.support.relation === 'held') continue;
    if (objectsSupportedBy(world, o.id).length > 0) continue;
    const g = graspPoint(o);
    const dxy = Math.hypot(g[0] - tip[0], g[1] - tip[1]);
    const dz = Math.abs(g[2] - tip[2]);
    if (dxy > GRASP_TOLERANCE.xy || dz > GRASP_TOLERANCE.z) continue;
    const d = Math.hypot(dxy, dz);
    if (d < bestD) {
      best = o;
      bestD = d;
    }
  }
  return best;
}

const withObject = (objects: readonly SimObject[], next: SimObject): SimObject[] => objects.map((o) => (o.id === next.id ? next : o));

/**
 * Applies one 5 Hz control step: translation/rotation deltas (clipped), gripper absolute.
 * Closing (command crossing below 0.5) next to a free graspable object attaches it; opening drops the
 * held object onto whatever is below it. Pure: returns a new world.
 */
export function step(world: World, action: Action7): World {
  const a = clipAction(world.ee, action);
  const pos: Vec3 = [world.ee.pos[0] + a[0], world.ee.pos[1] + a[1], world.ee.pos[2] + a[2]];
  const rpy: Vec3 = [world.ee.rpy[0] + a[3], world.ee.rpy[1] + a[4], world.ee.rpy[2] + a[5]];
  const command = a[6];
  let objects = world.objects;
  let held = world.held;

  if (held && command >= GRIPPER_THRESHOLD) {
    const o = getObject(world, held.id);
    const x = pos[0] + held.offset[0];
    const y = pos[1] + held.offset[1];
    const rest = landing(world, o.id, x, y);
    objects = withObject(objects, { ...o, pos: [x, y, rest.z], support: rest.support });
    held = null;
  } else if (!held && command < GRIPPER_THRESHOLD && world.ee.gripper >= GRIPPER_THRESHOLD) {
    // The grasp is decided where the fingers close, i.e. at the pose reached by this step.
    const target = graspCandidate(world, pos);
    if (target) {
      held = { id: target.id, offset: [target.pos[0] - pos[0], target.pos[1] - pos[1], target.pos[2] - pos[2]] };
      objects = withObject(objects, { ...target, support: { relation: 'held' } });
    }
  }

  let gripper = command;
  if (held) {
    const h = held;
    const o = getObject({ ...world, objects }, h.id);
    gripper = Math.max(command, OBJECT_SPECS[o.kind].holdWidth ?? 0);
    objects = withObject(objects, { ...o, pos: [pos[0] + h.offset[0], pos[1] + h.offset[1], Math.max(0, pos[2] + h.offset[2])] });
  }
  return { t: world.t + 1, ee: { pos, rpy, gripper }, objects, held };
}
