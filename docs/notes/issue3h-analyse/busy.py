import sys
srv=[l.split(' ',2) for l in open(sys.argv[1]).read().split('\n') if l]
srv=sorted((float(a[0]),a[1],a[2] if len(a)>2 else '') for a in srv)
sub={}; asg={}; reqs=[]
for t,ev,info in srv:
    if ev=='sub.done': sub[info]=t
    if ev=='cyc.assigned':
        for j in info.split(','): asg[j]=t
    if ev=='cyc.req': reqs.append((t,info))
import bisect, collections
rt=[r[0] for r in reqs]
c=collections.defaultdict(list)
for j,t in sub.items():
    if j not in asg: continue
    i=bisect.bisect_left(rt,t-0.05)
    k=reqs[i][1] if i<len(reqs) else '?'
    c[k].append(asg[j]-t)
for k,v in c.items():
    v.sort(); print(k,len(v),'sub.done->assigned p50 %.2f p90 %.2f p99 %.2f'%(v[len(v)//2],v[int(len(v)*.9)],v[int(len(v)*.99)]))
