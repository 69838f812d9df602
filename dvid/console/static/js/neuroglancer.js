// "Open in neuroglancer": a link to the server's configured neuroglancer with this version's
// image and segmentation layers (neuroglancer's dvid:// datasource).
export const IMAGE_TYPES = new Set(["uint8blk"]);
export const SEGMENTATION_TYPES = new Set(["labelblk", "labelmap"]);

/** The neuroglancer URL showing `names` (or every layer neuroglancer can read) of the version `uuid`. */
export function neuroglancerLink(base, uuid, instances, names = null) {
  const layers = [];
  for (const [name, inst] of Object.entries(instances)) {
    if (names && !names.includes(name)) continue;
    const type = inst.Base.TypeName;
    const source = `dvid://${location.origin}/${uuid}/${name}`;
    if (IMAGE_TYPES.has(type)) layers.push({ type: "image", source, name });
    else if (SEGMENTATION_TYPES.has(type)) layers.push({ type: "segmentation", source, name });
  }
  if (!layers.length) return null;
  layers.sort((a, b) => (a.type === b.type ? 0 : a.type === "image" ? -1 : 1));
  const state = { layers, layout: "4panel" };
  return `${base.replace(/#.*$/, "")}#!${encodeURIComponent(JSON.stringify(state))}`;
}
