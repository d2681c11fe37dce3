/**
 * The semantic task of the paper's Figure 5, "pick up the item above Ash Ketchum": picture cards
 * lie flat on the table with a printed label, and the instruction names an object only by the card
 * it lies above in the main camera's image. The object is resolved from the world, never named by the
 * task, so a policy has to read the card to know what to grasp.
 *
 * "Above" in the image of the main camera (image_0, which faces the robot from across the table, see
 * render.ts) is further from that camera, i.e. toward the robot's base: smaller x in Bridge axes.
 * An object is above a card when its center lies ABOVE_CARD.near..far meters behind the card's center
 * (-x) and within ABOVE_CARD.lateral of it sideways (y).
 */
import { claimIfFits, sampleEe, tryPlace, type Circle } from './layout';
import type { Rng } from './rng';
import { createWorld, isGraspable, PROP_KINDS, type ObjectKind, type ObjectPlacement, type SimObject, type World } from './world';

/** Who can be on a card (a few well-known faces, none with "the" or "a" in the name). */
export const PICTURE_LABELS = ['Ash Ketchum', 'Pikachu', 'Taylor Swift', 'Albert Einstein', 'Mona Lisa', 'Super Mario'] as const;
export type PictureLabel = (typeof PICTURE_LABELS)[number];

/** The region above a card, meters (see the module comment). */
export const ABOVE_CARD = { near: 0.03, far: 0.16, lateral: 0.06 } as const;
/** How far behind its card the sampler puts the item above it (clear of the card's own footprint). */
const ITEM_GAP = [0.1, 0.12] as const;

/** The label as written on the card, for any capitalisation of it; undefined for an unknown one. */
export function pictureLabel(text: string): PictureLabel | undefined {
  const key = text.trim().replace(/\s+/g, ' ').toLowerCase();
  return PICTURE_LABELS.find((l) => l.toLowerCase() === key);
}

/** The object id of a card: `card-ash-ketchum`. */
export function cardId(label: string): string {
  return `card-${label.toLowerCase().replace(/\s+/g, '-')}`;
}

export function findCard(world: World, label: string): SimObject | undefined {
  return world.objects.find((o) => o.kind === 'picture_card' && o.label === label);
}

const inRegion = (x: number, y: number, card: { readonly x: number; readonly y: number }): boolean => {
  const behind = card.x - x;
  return behind >= ABOVE_CARD.near && behind <= ABOVE_CARD.far && Math.abs(y - card.y) <= ABOVE_CARD.lateral;
};

/** Whether `o` lies above `card` in the main camera's image (held objects count where they are). */
export function isAbove(o: SimObject, card: SimObject): boolean {
  return inRegion(o.pos[0], o.pos[1], { x: card.pos[0], y: card.pos[1] });
}

/** Graspable objects above the card labelled `label`, the one nearest the card's center line first. */
export function objectsAbove(world: World, label: string): SimObject[] {
  const card = findCard(world, label);
  if (!card) return [];
  return world.objects
    .filter((o) => isGraspable(o.kind) && isAbove(o, card))
    .sort((a, b) => Math.abs(a.pos[1] - card.pos[1]) - Math.abs(b.pos[1] - card.pos[1]) || (a.id < b.id ? -1 : 1));
}

/** The kind of the item above the card labelled `label`; throws when there is no such card or item. */
export function itemAbove(world: World, label: string): ObjectKind {
  if (!findCard(world, label)) throw new Error(`no picture card "${label}" in the scene`);
  const item = objectsAbove(world, label)[0];
  if (!item) throw new Error(`nothing graspable lies above the picture card "${label}"`);
  return item.kind;
}

function placeCard(label: PictureLabel, rng: Rng, placed: Circle[]): ObjectPlacement | undefined {
  for (let attempt = 0; attempt < 200; attempt++) {
    // Far enough from the robot that the item above it is still on the table in front of the arm.
    const p: ObjectPlacement = { kind: 'picture_card', id: cardId(label), label, x: rng.uniform(0.3, 0.44), y: rng.uniform(-0.17, 0.17), yaw: rng.uniform(-0.12, 0.12) };
    if (claimIfFits(p, placed)) return p;
  }
  return undefined;
}

function placeAbove(kind: ObjectKind, card: ObjectPlacement, rng: Rng, placed: Circle[]): ObjectPlacement | undefined {
  for (let attempt = 0; attempt < 50; attempt++) {
    const p: ObjectPlacement = {
      kind,
      x: card.x - rng.uniform(ITEM_GAP[0], ITEM_GAP[1]),
      y: card.y + rng.uniform(-0.012, 0.012),
      yaw: kind.endsWith('_block') ? rng.uniform(-0.4, 0.4) : rng.uniform(-Math.PI, Math.PI),
    };
    if (claimIfFits(p, placed)) return p;
  }
  return undefined;
}

const GRASPABLE_PROPS = PROP_KINDS.filter(isGraspable);

/**
 * A scene for "pick up the item above <label>": the card with exactly one graspable object above it,
 * one or two other cards most of which have an item above them too (so only the label tells the cards
 * apart), and one or two distractors that lie above no card.
 */
export function sampleItemAboveScene(label: PictureLabel, rng: Rng): World {
  for (let attempt = 0; attempt < 50; attempt++) {
    const placed: Circle[] = [];
    const out: ObjectPlacement[] = [];
    const labels = [label, ...rng.shuffle(PICTURE_LABELS.filter((l) => l !== label)).slice(0, rng.int(1, 2))];
    const items = rng.shuffle(GRASPABLE_PROPS);
    const cards: ObjectPlacement[] = [];
    let ok = true;
    for (const [i, l] of labels.entries()) {
      const card = placeCard(l, rng, placed);
      if (!card) {
        ok = i > 0;
        break;
      }
      cards.push(card);
      out.push(card);
      if (i > 0 && !rng.chance(0.7)) continue;
      const kind = items.pop();
      const item = kind === undefined ? undefined : placeAbove(kind, card, rng, placed);
      if (item) out.push(item);
      else if (i === 0) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    const others = rng.shuffle(PROP_KINDS.filter((k) => !out.some((p) => p.kind === k)));
    for (const kind of others.slice(0, rng.int(1, 2))) {
      const p = tryPlace(kind, rng, placed, (q) => !cards.some((c) => inRegion(q.x, q.y, c)));
      if (p) out.push(p);
    }
    const world = createWorld(out, sampleEe(rng));
    if (objectsAbove(world, label).length === 1) return world;
  }
  throw new Error(`could not lay out a scene with one item above the picture card "${label}"`);
}
